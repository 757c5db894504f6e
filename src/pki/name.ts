/**
 * X.501 Names (RFC 5280 §4.1.2.4) as the device PKI needs them: a subject of one common name
 * for a request, and for a received Name its exact DER (issuers are matched bytewise, as the
 * host does), its common names and a display string for messages.
 */
import {
  DerError,
  type DerNode,
  items,
  oid,
  readOid,
  readString,
  sequence,
  setItems,
  setOf,
  Tag,
  utf8String,
} from './der.js';
import { OID, OID_NAMES } from './oids.js';

export interface Name {
  /** The Name's DER exactly as received (a view into the parsed input). */
  der: Uint8Array;
  /** Every commonName value, in order (a device certificate has exactly one: its device id). */
  commonNames: string[];
  /** For messages: "CN=dev-1" style, attributes in encoded order, joined by ", ". */
  text: string;
}

/** Name ::= SEQUENCE { SET { SEQUENCE { id-at-commonName, UTF8String cn } } } */
export function commonNameSubject(cn: string): Uint8Array {
  return sequence(setOf(sequence(oid(OID.commonName), utf8String(cn))));
}

/** Reads a Name: a SEQUENCE of non-empty SETs (DER ordered) of SEQUENCE { type OID, value }. */
export function readName(node: DerNode | undefined, what: string): Name {
  const rdns = items(node, Tag.SEQUENCE, what);
  const commonNames: string[] = [];
  const parts: string[] = [];
  for (const rdn of rdns) {
    for (const atv of setItems(rdn, `a relative name of ${what}`, 1)) {
      const [type, value] = items(atv, Tag.SEQUENCE, `an attribute of ${what}`, 2, 2);
      const attribute = readOid(type, `an attribute type of ${what}`);
      const label = OID_NAMES[attribute] ?? attribute;
      if (attribute === OID.commonName) {
        const cn = readString(value, `the common name of ${what}`);
        commonNames.push(cn);
        parts.push(`CN=${cn}`);
      } else {
        let text: string;
        try {
          text = readString(value, label);
        } catch (e) {
          if (!(e instanceof DerError)) throw e;
          text = `#${value!.encoding.length}-byte value`;
        }
        parts.push(`${label}=${text}`);
      }
    }
  }
  return { der: node!.encoding, commonNames, text: parts.join(', ') };
}
