export { buildProgram, SERVICES } from "./program.js";
