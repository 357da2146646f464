import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { RuleditError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';

/** A sandbox needs user namespaces (absent in containers); the rest keeps the run offline. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export const DEFAULT_CHROMIUM = '/usr/bin/chromium';

/** What a browser made of a report: the evidence that it renders, not just that it was written. */
export interface PageCheck {
  /** Every <img>, with its decoded (natural) size and its size on the page. */
  images: { alt: string; naturalWidth: number; width: number; height: number }[];
  /**
   * Every inline chart <svg>, with its size on the page, its data marks, and the labels of those
   * drawn beyond their plot area (more than 1 px outside the frame they belong to).
   */
  charts: { label: string; width: number; height: number; marks: number; outside: string[] }[];
  /** Every example card: its caption and the predictions it shows before and after. */
  cards: { caption: string; before?: string; after?: string }[];
  /** Requests for anything but file: and data: URLs, and Content-Security-Policy complaints. */
  external: string[];
  /** Full-page screenshot: its path, size, and how many distinct colours it holds. */
  screenshot: { path: string; width: number; height: number; colours: number };
}

export interface ScreenshotOptions {
  /** Chromium or Chrome binary; default $CHROMIUM_PATH, else /usr/bin/chromium. */
  executablePath?: string;
  /** Viewport width in CSS pixels (the page is captured at its full height). */
  width?: number;
  force?: boolean;
}

/**
 * Open an HTML report from disk in headless Chromium, wait for its images to decode, take a
 * full-page screenshot and measure what is on the page.
 */
export async function screenshotReport(
  htmlPath: string,
  pngPath: string,
  options: ScreenshotOptions = {},
): Promise<PageCheck> {
  const executablePath = options.executablePath ?? process.env.CHROMIUM_PATH ?? DEFAULT_CHROMIUM;
  if (!existsSync(executablePath))
    throw new RuleditError(
      'no-chromium',
      `Chromium not found at ${executablePath}: install it (Debian: apt-get install chromium) or set CHROMIUM_PATH`,
    );
  if (!existsSync(htmlPath)) throw new RuleditError('not-found', `report not found: ${htmlPath}`);
  // Imported here: playwright-core takes half a second to load, and most callers never need it.
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
  });
  try {
    const page = await browser.newPage({ viewport: { width: options.width ?? 1280, height: 900 } });
    const external: string[] = [];
    page.on('request', (r) => {
      if (!/^(file|data):/.test(r.url())) external.push(r.url());
    });
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) external.push(m.text());
    });
    await page.goto(pathToFileURL(resolve(htmlPath)).href, { waitUntil: 'load' });
    await page.waitForFunction(() => [...document.images].every((i) => i.complete));
    const found = await page.evaluate(() => ({
      images: [...document.images].map((i) => {
        const box = i.getBoundingClientRect();
        return { alt: i.alt, naturalWidth: i.naturalWidth, width: box.width, height: box.height };
      }),
      charts: [...document.querySelectorAll('figure.chart > svg')].map((s) => {
        const box = s.getBoundingClientRect();
        // Vega draws a group (the view, or a facet's cell) as <g> with a path.background first:
        // a data mark's plot area is the background of the nearest group holding it. (No named
        // helpers in here: tsx would wrap them in a __name() the page does not have.)
        const marks = [...s.querySelectorAll('g.role-mark > *')];
        const outside: string[] = [];
        for (const m of marks) {
          let frame: DOMRect | undefined;
          for (let g = m.parentElement; g && !frame && g !== s.parentElement; g = g.parentElement)
            frame = g.querySelector(':scope > path.background')?.getBoundingClientRect();
          const r = m.getBoundingClientRect();
          if (!frame || (r.width === 0 && r.height === 0)) continue;
          if (
            r.left < frame.left - 1 ||
            r.right > frame.right + 1 ||
            r.top < frame.top - 1 ||
            r.bottom > frame.bottom + 1
          )
            outside.push(m.getAttribute('aria-label') ?? m.tagName);
        }
        return {
          label: s.getAttribute('aria-label') ?? '',
          width: box.width,
          height: box.height,
          marks: marks.length,
          outside,
        };
      }),
      cards: [...document.querySelectorAll('figure.example')].map((f) => {
        const terms = [...f.querySelectorAll('dl.pred dt')];
        const before = terms.find((dt) => dt.textContent === 'before');
        const after = terms.find((dt) => dt.textContent === 'after');
        return {
          caption: f.querySelector('figcaption > p')?.textContent ?? '',
          before: before?.nextElementSibling?.textContent ?? undefined,
          after: after?.nextElementSibling?.textContent ?? undefined,
        };
      }),
    }));
    const png = await page.screenshot({ fullPage: true, type: 'png' });
    await writeFileAtomic(pngPath, png, { force: options.force });
    const { data, info } = await sharp(png)
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    const colours = new Set<number>();
    for (let i = 0; i < data.length; i += 3)
      colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
    return {
      ...found,
      external,
      screenshot: {
        path: resolve(pngPath),
        width: info.width,
        height: info.height,
        colours: colours.size,
      },
    };
  } finally {
    await browser.close();
  }
}
