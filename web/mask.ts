/**
 * The concept mask, painted on a display canvas over the image and read back at model resolution
 * by area averaging (the fraction of each model pixel the paint covers), the same rule the
 * rewrite uses to bring masks to key resolution.
 */
export class MaskPainter {
  private readonly ctx: CanvasRenderingContext2D;
  private painting = false;
  private last?: [number, number];
  tool: 'brush' | 'eraser' = 'brush';
  radius = 14;
  onChange = () => {};

  constructor(private readonly canvas: HTMLCanvasElement) {
    this.ctx = canvas.getContext('2d', { willReadFrequently: true })!;
    canvas.addEventListener('pointerdown', (e) => {
      this.painting = true;
      canvas.setPointerCapture(e.pointerId);
      this.stroke(this.at(e));
    });
    canvas.addEventListener('pointermove', (e) => this.painting && this.stroke(this.at(e)));
    const end = () => {
      if (this.painting) this.onChange();
      this.painting = false;
      this.last = undefined;
    };
    canvas.addEventListener('pointerup', end);
    canvas.addEventListener('pointercancel', end);
  }

  clear(): void {
    this.ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    this.onChange();
  }

  /** Show a mask given at model resolution (values in [0,1]). */
  set(values: number[], w: number, h: number): void {
    const small = new OffscreenCanvas(w, h);
    const sctx = small.getContext('2d')!;
    const img = sctx.createImageData(w, h);
    values.forEach((v, i) => {
      img.data.set([255, 80, 0, Math.round(v * 255)], i * 4);
    });
    sctx.putImageData(img, 0, 0);
    this.ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    this.ctx.imageSmoothingEnabled = false;
    this.ctx.drawImage(small, 0, 0, this.canvas.width, this.canvas.height);
    this.onChange();
  }

  /** h*w values in [0,1]: the painted fraction of each model pixel. */
  read(w: number, h: number): number[] {
    const { width: W, height: H } = this.canvas;
    const alpha = this.ctx.getImageData(0, 0, W, H).data;
    const out = new Array<number>(w * h).fill(0);
    const count = new Array<number>(w * h).fill(0);
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const i =
          Math.min(h - 1, Math.floor((y * h) / H)) * w + Math.min(w - 1, Math.floor((x * w) / W));
        out[i] += alpha[(y * W + x) * 4 + 3] > 0 ? 1 : 0;
        count[i]++;
      }
    return out.map((v, i) => Math.round((v / count[i]) * 1000) / 1000);
  }

  private at(e: PointerEvent): [number, number] {
    const r = this.canvas.getBoundingClientRect();
    return [
      ((e.clientX - r.left) * this.canvas.width) / r.width,
      ((e.clientY - r.top) * this.canvas.height) / r.height,
    ];
  }

  private stroke(p: [number, number]): void {
    const c = this.ctx;
    c.globalCompositeOperation = this.tool === 'eraser' ? 'destination-out' : 'source-over';
    // Opaque paint: partial alpha would read back as "half inside" after antialiasing only.
    c.strokeStyle = c.fillStyle = 'rgba(255, 80, 0, 1)';
    c.lineWidth = this.radius * 2;
    c.lineCap = 'round';
    c.beginPath();
    const from = this.last ?? p;
    c.moveTo(from[0], from[1]);
    c.lineTo(p[0], p[1]);
    c.stroke();
    this.last = p;
  }
}
