/**
 * Argument mistakes get one line that says what to do: an unknown option names the nearest known
 * one, a number out of range says the range allowed. Exit status 2 (a usage error), run in-process.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeRange, nearest } from '../../cli/command.js';
import { main } from '../../cli/main.js';
import { capturingIo } from '../fixtures/cli-io.js';

test('an unknown option gets a did-you-mean from that command’s own options', async () => {
  const cases: [string[], RegExp][] = [
    [
      ['sim', '--devcies', '3', '--broker', 'mqtt://127.0.0.1:1'],
      /unknown option --devcies \(did you mean --devices\?\)/,
    ],
    [['demo', '--duratoin', '3'], /unknown option --duratoin \(did you mean --duration\?\)/],
    [['ca', 'init', '--forse'], /unknown option --forse \(did you mean --force\?\)/],
    [['cloud', 'run', '--brokr', 'x'], /unknown option --brokr \(did you mean --broker\?\)/],
    [['sim', '--zzzzzzzz'], /unknown option --zzzzzzzz\n/],
  ];
  for (const [argv, expected] of cases) {
    const io = capturingIo();
    assert.equal(await main(argv, io), 2, argv.join(' '));
    assert.match(io.err, expected, argv.join(' '));
    assert.doesNotMatch(io.err, /\n {4}at /, 'no stack trace');
    assert.equal(io.err.trim().split('\n').length, 2, `one line and the pointer to --help:\n${io.err}`);
  }
});

test('a number out of range says the range', async () => {
  const cases: [string[], RegExp][] = [
    [['sim', '--rate', '0', '--broker', 'mqtt://127.0.0.1:1'], /--rate "0" is out of range: a number > 0 and ≤ 1000/],
    [
      ['sim', '--devices', '0', '--broker', 'mqtt://127.0.0.1:1'],
      /--devices "0" is out of range: a whole number from 1 to 100000/,
    ],
    [['demo', '--qos', '2'], /--qos "2" is out of range: 0 or 1/],
    [['demo', '--rate', 'fast'], /--rate "fast" is out of range: a number > 0 and ≤ 1000/],
  ];
  for (const [argv, expected] of cases) {
    const io = capturingIo();
    assert.equal(await main(argv, io), 2, argv.join(' '));
    assert.match(io.err, expected);
  }
});

test('nearest and describeRange', () => {
  assert.equal(nearest('devcies', ['devices', 'rate', 'broker']), 'devices');
  assert.equal(nearest('qso', ['qos', 'rate']), 'qos');
  assert.equal(nearest('completely-else', ['devices', 'rate']), undefined);
  assert.equal(describeRange({ integer: true, min: 1, max: 10 }), 'a whole number from 1 to 10');
  assert.equal(describeRange({ above: 0 }), 'a number > 0');
  assert.equal(describeRange({ min: 0 }), 'a number ≥ 0');
  assert.equal(describeRange({ oneOf: [0, 1] }), '0 or 1');
});
