/** Arrival: which bytes of a download are on disk, for the verification that reads them meanwhile. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Arrival, type ArrivalRange } from '../../src/transfer/arrival.ts';

const settled = async (p: Promise<void>): Promise<string> => {
  let state = 'pending';
  p.then(() => (state = 'resolved'), () => (state = 'rejected'));
  await new Promise((r) => setImmediate(r));
  return state;
};

test('a waiter is released once every part overlapping its range has written that far', async () => {
  const parts: ArrivalRange[] = [0, 10, 20].map((start) => ({ start, end: start + 9, done: 0 }));
  const a = new Arrival(30, parts);
  assert.equal(await settled(a.ready(0, 0)), 'resolved', 'an empty range is always there');
  const tail = a.ready(25, 30);
  const middle = a.ready(5, 15);
  parts[2].done = 10;
  a.update();
  assert.equal(await settled(tail), 'resolved', 'the last part alone is enough for the tail');
  parts[0].done = 10;
  parts[1].done = 4;
  a.update();
  assert.equal(await settled(middle), 'pending', 'bytes 14 of part 2 are missing');
  parts[1].done = 5;
  a.update();
  assert.equal(await settled(middle), 'resolved');
});

test('fail() rejects the waiters, and every later one', async () => {
  const a = new Arrival(10, [{ start: 0, end: 9, done: 3 }]);
  const w = a.ready(0, 10);
  a.fail(new Error('gone'));
  await assert.rejects(w, /gone/);
  await assert.rejects(a.ready(0, 2), /gone/);
  assert.ok(a.failed);
});
