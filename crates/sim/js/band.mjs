// The clock band decoder for browsers and Node: a line-for-line port of `decode_band` in
// crates/sim/src/band.rs (the layout is described there and in docs/sim.md). Keep the two in
// step; crates/sim/tests/band_js.rs checks that they agree on the same frames.
//
// Use with a canvas: ctx.drawImage(video, 0, 0, w, h);
//   const band = decodeBand(ctx.getImageData(0, 0, w, h).data, w, h);
//   if (band !== null) latencyMs = bandAgeMs(band, Date.now());

export const BAND_CELLS = 32;
export const BAND_DATA_BITS = 24;
export const BAND_PERIOD_MS = 2 ** 24;
const MIN_CONTRAST = 48;

function crc4(data) {
  let crc = 0;
  for (let i = BAND_DATA_BITS - 1; i >= 0; i--) {
    const bit = ((data >>> i) & 1) ^ ((crc >>> 3) & 1);
    crc = (crc << 1) & 0xf;
    if (bit === 1) crc ^= 0x3;
  }
  return crc;
}

// pixels: grey (width*height bytes, or a longer planar YUV buffer whose first plane is luma),
// RGB (*3) or RGBA (*4, e.g. ImageData.data). Returns unix_ms mod 2^24 of the frame, or null.
export function decodeBand(pixels, width, height) {
  if (!Number.isInteger(width) || !Number.isInteger(height)) return null;
  if (width < BAND_CELLS || height < 12) return null;
  const area = width * height;
  let bpp;
  if (pixels.length === area * 3) bpp = 3;
  else if (pixels.length === area * 4) bpp = 4;
  else if (pixels.length >= area) bpp = 1;
  else return null;
  const luma = (x, y) => {
    const i = (y * width + x) * bpp;
    if (bpp === 1) return pixels[i];
    return (pixels[i] * 77 + pixels[i + 1] * 150 + pixels[i + 2] * 29) >> 8;
  };
  const top = Math.floor((height * 10) / 12);
  const bottom = Math.floor((height * 11) / 12);
  const quarterH = Math.floor((bottom - top) / 4);
  const y0 = top + quarterH;
  const y1 = Math.max(bottom - quarterH, y0 + 1);
  const means = new Array(BAND_CELLS);
  for (let i = 0; i < BAND_CELLS; i++) {
    const l = Math.floor((i * width) / BAND_CELLS);
    const r = Math.floor(((i + 1) * width) / BAND_CELLS);
    const quarterW = Math.floor((r - l) / 4);
    const x0 = l + quarterW;
    const x1 = Math.max(r - quarterW, x0 + 1);
    let sum = 0;
    let n = 0;
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        sum += luma(x, y);
        n++;
      }
    }
    means[i] = Math.floor(sum / n);
  }
  const white = means[0];
  const black = means[1];
  if (white < black + MIN_CONTRAST) return null;
  const threshold = Math.floor((white + black) / 2);
  const bit = (i) => (means[i] > threshold ? 1 : 0);
  if (bit(30) === 1 || bit(31) === 0) return null;
  let data = 0;
  for (let i = 0; i < BAND_DATA_BITS; i++) data = data * 2 + bit(2 + i);
  let crc = 0;
  for (let i = 0; i < 4; i++) crc = crc * 2 + bit(26 + i);
  return crc === crc4(data) ? data : null;
}

// Milliseconds between a band value and nowMs (e.g. Date.now()), modulo the band period.
export function bandAgeMs(band, nowMs) {
  const p = BAND_PERIOD_MS;
  return ((nowMs % p) + p - (band % p)) % p;
}
