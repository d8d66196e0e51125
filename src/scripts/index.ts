export { isNoScript, runScript, SCRIPTS, type ScriptName, shaOf, VERSION } from './registry.js';
