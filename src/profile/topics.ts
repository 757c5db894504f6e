/** MQTT topics of cose-flow/1: `{prefix}/{deviceId}/{kind}`. */
import { DEFAULT_PREFIX } from './limits.js';

export type TopicKind = 'session' | 'data' | 'control' | 'enroll' | 'enroll/result';
const KINDS: readonly TopicKind[] = ['session', 'data', 'control', 'enroll', 'enroll/result'];

/** Device ids: 1–64 of A–Z a–z 0–9 . _ - (no MQTT wildcards, no level separator). */
const DEVICE_ID = /^[A-Za-z0-9._-]{1,64}$/;

export function isValidDeviceId(id: string): boolean {
  return DEVICE_ID.test(id) && id !== '.' && id !== '..';
}

export function checkDeviceId(id: string): string {
  if (!isValidDeviceId(id))
    throw new RangeError(`invalid device id ${JSON.stringify(id)}: use 1–64 of A-Z a-z 0-9 . _ -`);
  return id;
}

/** A prefix is one or more non-empty topic levels without wildcards, no leading/trailing '/'. */
export function checkPrefix(prefix: string): string {
  if (prefix.length === 0 || /[#+\u0000]/.test(prefix) || prefix.split('/').some((level) => level.length === 0)) {
    throw new RangeError(`invalid topic prefix ${JSON.stringify(prefix)}`);
  }
  return prefix;
}

export function topic(kind: TopicKind, deviceId: string, prefix: string = DEFAULT_PREFIX): string {
  return `${checkPrefix(prefix)}/${checkDeviceId(deviceId)}/${kind}`;
}

/** The subscription filter that matches `kind` for every device: `{prefix}/+/{kind}`. */
export function topicFilter(kind: TopicKind, prefix: string = DEFAULT_PREFIX): string {
  return `${checkPrefix(prefix)}/+/${kind}`;
}

/** Splits a topic into device id and kind; `undefined` when it is not a cose-flow/1 topic under `prefix`. */
export function parseTopic(
  name: string,
  prefix: string = DEFAULT_PREFIX,
): { deviceId: string; kind: TopicKind } | undefined {
  const head = `${prefix}/`;
  if (!name.startsWith(head)) return undefined;
  const rest = name.slice(head.length);
  const slash = rest.indexOf('/');
  if (slash < 0) return undefined;
  const deviceId = rest.slice(0, slash);
  const kind = rest.slice(slash + 1) as TopicKind;
  if (!isValidDeviceId(deviceId) || !KINDS.includes(kind)) return undefined;
  return { deviceId, kind };
}
