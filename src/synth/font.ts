/**
 * A 3x5 pixel font for the stickers' words: at 64x64 a class word must stay legible to a small
 * CNN, and a bitmap font draws the same pixels on every machine (no system fonts involved).
 * Each glyph is five rows of three bits, most significant bit on the left.
 */
const GLYPHS: Record<string, number[]> = {
  A: [2, 5, 7, 5, 5],
  B: [6, 5, 6, 5, 6],
  C: [3, 4, 4, 4, 3],
  D: [6, 5, 5, 5, 6],
  E: [7, 4, 6, 4, 7],
  F: [7, 4, 6, 4, 4],
  G: [3, 4, 5, 5, 3],
  H: [5, 5, 7, 5, 5],
  I: [7, 2, 2, 2, 7],
  J: [1, 1, 1, 5, 2],
  K: [5, 5, 6, 5, 5],
  L: [4, 4, 4, 4, 7],
  M: [5, 7, 7, 5, 5],
  N: [6, 5, 5, 5, 5],
  O: [2, 5, 5, 5, 2],
  P: [6, 5, 6, 4, 4],
  Q: [2, 5, 5, 6, 3],
  R: [6, 5, 6, 5, 5],
  S: [3, 4, 2, 1, 6],
  T: [7, 2, 2, 2, 2],
  U: [5, 5, 5, 5, 7],
  V: [5, 5, 5, 5, 2],
  W: [5, 5, 7, 7, 5],
  X: [5, 5, 2, 5, 5],
  Y: [5, 5, 2, 2, 2],
  Z: [7, 1, 2, 4, 7],
};

/** Pixels (x, y offsets) of a word at scale 1: 3x5 glyphs, one blank column between letters. */
export function wordPixels(word: string): { pixels: [number, number][]; width: number } {
  const pixels: [number, number][] = [];
  const letters = word.toUpperCase();
  for (let i = 0; i < letters.length; i++) {
    const glyph = GLYPHS[letters[i]];
    if (!glyph) throw new Error(`no glyph for '${letters[i]}'`);
    for (let row = 0; row < 5; row++) {
      for (let col = 0; col < 3; col++) {
        if (glyph[row] & (4 >> col)) pixels.push([i * 4 + col, row]);
      }
    }
  }
  return { pixels, width: letters.length * 4 - 1 };
}
