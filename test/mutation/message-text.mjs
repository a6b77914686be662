// @ts-check
// The one kind of code `npm run mutation` leaves unmutated: pure message text (docs/mutation.md).
// A string or template literal is message text when it is
//   - the message of an error: an argument of `new SomethingError(…)`;
//   - valibot's message for a failed check: the string argument of the actions listed below, which
//     take no other string;
//   - the text of a log line: an argument of `log(…)`, `this.#log(…)`, `console.*(…)`.
// A template is left out only when its expressions are plain values (names, member reads, calls
// on plain values): one that decides something (`a ? b : c`, `a || b`, arithmetic) keeps its
// mutants, so the decision is still tested. Whether an error is thrown or a line is logged is not
// text, and stays mutated.
import { PluginKind, declareValuePlugin } from '@stryker-mutator/api/plugin';

/** valibot actions whose only string argument is the message. */
const VALIBOT_MESSAGE_ACTIONS = new Set([
  'boolean', 'check', 'finite', 'integer', 'maxLength', 'maxValue', 'minLength', 'minValue', 'nonEmpty',
  'number', 'regex', 'string',
]);
const LOG_CALLEES = new Set(['log', '#log', 'warn']);

/** @param {any} node */
function isPlainValue(node) {
  switch (node.type) {
    case 'Identifier':
    case 'StringLiteral':
    case 'NumericLiteral':
    case 'PrivateName':
    case 'ThisExpression':
      return true;
    case 'MemberExpression':
    case 'OptionalMemberExpression':
      return isPlainValue(node.object) && (!node.computed || isPlainValue(node.property));
    case 'CallExpression':
    case 'OptionalCallExpression':
      return isPlainValue(node.callee) && node.arguments.every(isPlainValue);
    case 'TemplateLiteral':
      return node.expressions.every(isPlainValue);
    default:
      return false;
  }
}

/** @param {any} callee */
function calleeName(callee) {
  if (callee.type === 'Identifier') return callee.name;
  if (callee.type === 'MemberExpression' && !callee.computed) {
    return callee.property.type === 'PrivateName' ? `#${callee.property.id.name}` : callee.property.name;
  }
  return undefined;
}

/** @param {any} call @param {any} arg */
function messagePosition(call, arg) {
  if (call.type === 'NewExpression') return calleeName(call.callee)?.endsWith('Error') ? 'an error message' : undefined;
  if (call.type !== 'CallExpression') return undefined;
  const name = calleeName(call.callee);
  const { callee } = call;
  if (callee.type === 'MemberExpression' && callee.object.type === 'Identifier') {
    if (callee.object.name === 'console') return 'a log line';
    if (callee.object.name === 'v' && VALIBOT_MESSAGE_ACTIONS.has(name)) return 'a validation message';
  }
  if (name !== undefined && LOG_CALLEES.has(name) && call.arguments[0] === arg) return 'a log line';
  return undefined;
}

export const strykerPlugins = [
  declareValuePlugin(PluginKind.Ignore, 'message-text', {
    /** @param {import('@babel/core').NodePath} path */
    shouldIgnore(path) {
      const { node, parent } = path;
      if (node.type !== 'StringLiteral' && node.type !== 'TemplateLiteral') return undefined;
      if (node.type === 'TemplateLiteral' && !isPlainValue(node)) return undefined;
      if (!parent || !('arguments' in parent) || !parent.arguments.includes(/** @type {any} */ (node))) return undefined;
      const position = messagePosition(parent, node);
      return position ? `Message text (${position}): what it says is not a rule` : undefined;
    },
  }),
];
