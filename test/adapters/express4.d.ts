// express4 is express@4 installed under an alias, to test both majors; its API matches express's types.
declare module 'express4' {
  import express from 'express';
  export default express;
}

// express-rate-limit7 is express-rate-limit@7 under an alias; its API is a subset of v8's types.
declare module 'express-rate-limit7' {
  export * from 'express-rate-limit';
  export { default } from 'express-rate-limit';
}
