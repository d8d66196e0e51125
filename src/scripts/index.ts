export { evalScript, isNoScript, shaOf, wasSent } from './eval-script.js';
export { commandName, runScript, SCRIPTS, type ScriptName, VERSION } from './registry.js';
