// === Redis Cluster's key slot (CRC16/XMODEM of the hash tag, modulo 16384)
//
// The ports route a command by its first key; in a Cluster they check the connection to the
// master of that key's slot before they hand the command over.

const CRC16 = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  let crc = i << 8;
  for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
  CRC16[i] = crc & 0xffff;
}

/** Slots by hash tag: the store's keys use a few dozen tags. */
const slotsByTag = new Map<string, number>();

/** The Cluster slot of `key`, as `CLUSTER KEYSLOT` answers it. */
export function slotOf(key: string): number {
  let tag = key;
  const open = key.indexOf("{");
  if (open !== -1) {
    const close = key.indexOf("}", open + 1);
    if (close > open + 1) tag = key.slice(open + 1, close);
  }
  let slot = slotsByTag.get(tag);
  if (slot === undefined) {
    let crc = 0;
    for (const byte of Buffer.from(tag)) {
      crc = ((crc << 8) & 0xffff) ^ (CRC16[((crc >> 8) ^ byte) & 0xff] as number);
    }
    slot = crc & 16383;
    if (slotsByTag.size >= 4096) slotsByTag.clear();
    slotsByTag.set(tag, slot);
  }
  return slot;
}
