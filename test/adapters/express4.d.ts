// express4 is express@4 installed under an alias, to test both majors; its API matches express's types.
declare module 'express4' {
  import express from 'express';
  export default express;
}
