/** Lua sources are bundled as text (tsup `loader`, the Vite plugin, and the Node loader hook). */
declare module '*.lua' {
  const source: string;
  export default source;
}
