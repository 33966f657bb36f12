/** UTF-8 sizes without encoding. */

/** UTF-8 length of `text`, without encoding it. */
export function utf8Length(text: string): number {
  let bytes = text.length
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x80) continue
    // Two bytes up to U+07FF, three for the rest of the BMP; a surrogate pair (2 units) is 4.
    bytes += code < 0x800 ? 1 : code >= 0xd800 && code <= 0xdfff ? 1 : 2
  }
  return bytes
}
