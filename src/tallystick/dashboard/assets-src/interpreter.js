// Bundled by scripts/build-dashboard-assets.sh into static/vendor/vega-interpreter.min.js
// (global `vegaInterpreter`): Vega's expression interpreter, so charts need no eval() and
// the dashboard's Content-Security-Policy can forbid it.
export { expressionInterpreter } from "vega-interpreter";
