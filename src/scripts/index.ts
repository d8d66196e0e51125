export { commandName, runScript, SCRIPTS, type ScriptName, VERSION } from './registry.js';
