// The web UI in a real browser: Debian's headless Chromium driven by playwright-core (no browser
// download). Loads the home page, a search and project pages at desktop and phone widths, in
// light and dark mode; checks that nothing logs a console error (a CSP violation would), that
// the search form and the copy button work, and that a hostile README runs nothing. Screenshots
// go to test-output/screenshots/ (gitignored; kept as CI artifacts).

import { expect } from 'chai';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { makeConfig } from './helpers/config.js';
import { startServer, type RunningServer } from '../lib/server.js';
import { REPO } from './helpers/server.js';
import { makeUiFixture, waitForSummaries } from './helpers/ui-fixture.js';

const CHROMIUM = '/usr/bin/chromium';
export const SCREENSHOTS = path.join(REPO, 'test-output', 'screenshots');

interface Watched {
  page: Page;
  errors: string[];
  dialogs: string[];
}

async function open(context: BrowserContext, url: string): Promise<Watched> {
  const page = await context.newPage();
  const errors: string[] = [];
  const dialogs: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') errors.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  const r = await page.goto(url, { waitUntil: 'load' });
  expect(r?.status(), url).to.equal(200);
  return { page, errors, dialogs };
}

// What any outside host answers (the machine is offline): a badge-like SVG for README images.
const BADGE = '<svg xmlns="http://www.w3.org/2000/svg" width="90" height="20"><rect width="40" height="20" fill="#555"/><rect x="40" width="50" height="20" fill="#4c1"/><g fill="#fff" font-family="Verdana,sans-serif" font-size="11"><text x="5" y="14">build</text><text x="44" y="14">passing</text></g></svg>';

describe('web UI in headless Chromium', function () {
  this.timeout(120_000);
  let running: RunningServer;
  let browser: Browser;

  async function newContext(opts: Parameters<Browser['newContext']>[0] = {}): Promise<BrowserContext> {
    const context = await browser.newContext(opts);
    await context.route((u) => !u.href.startsWith(`${running.url}/`), (route) => route.fulfill({ contentType: 'image/svg+xml', body: BADGE }));
    return context;
  }

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      console.log(`      skipped: ${CHROMIUM} is not installed (npm run deps:system installs Debian's chromium)`);
      this.skip();
    }
    const { root } = await makeUiFixture();
    running = await startServer(makeConfig({ roots: [root] }), pino({ level: 'silent' }));
    await running.loaded;
    await running.indexer.whenIdle();
    await waitForSummaries(running.url);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    await fsp.mkdir(SCREENSHOTS, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    await running?.close();
  });

  const views = [
    { label: 'desktop', viewport: { width: 1280, height: 900 }, isMobile: false },
    { label: 'phone', viewport: { width: 390, height: 844 }, isMobile: true },
  ] as const;
  const schemes = ['light', 'dark'] as const;
  const pages = [
    { name: 'home', path: '/', expect: 'Recently updated' },
    { name: 'search', path: '/search?q=widgets', expect: 'Results for' },
    { name: 'project', path: '/project/acme-widgets/', expect: 'Acme.Widgets' },
    { name: 'yanked-release', path: '/project/acme-widgets/1.1.0/', expect: 'This release is yanked' },
    { name: 'hostile-readme', path: '/project/hostile-readme/', expect: 'Totally normal package' },
    { name: 'not-found', path: '/project/no-such-thing/', expect: 'Project not found' },
  ];

  for (const view of views) {
    for (const scheme of schemes) {
      it(`renders every page without console errors (${view.label}, ${scheme})`, async function () {
        const context = await newContext({ viewport: view.viewport, isMobile: view.isMobile, hasTouch: view.isMobile, colorScheme: scheme, deviceScaleFactor: 1 });
        try {
          for (const p of pages) {
            const page = await context.newPage();
            const errors: string[] = [];
            page.on('console', (m) => {
              // The 404 page's own status is reported as a console error by Chromium: that one is expected.
              if ((m.type() === 'error' || m.type() === 'warning') && !(p.name === 'not-found' && /status of 404/.test(m.text()))) errors.push(m.text());
            });
            page.on('pageerror', (e) => errors.push(e.message));
            await page.goto(`${running.url}${p.path}`, { waitUntil: 'load' });
            expect(await page.locator('main').innerText(), p.name).to.contain(p.expect);
            // The stylesheet was allowed by the CSP and applied: the header has its colour.
            const headerBg = await page.evaluate<string>("getComputedStyle(document.querySelector('.site-header')).backgroundColor");
            expect(headerBg, `${p.name}: stylesheet applied, ${scheme} colours`).to.equal(scheme === 'light' ? 'rgb(29, 43, 83)' : 'rgb(17, 26, 51)');
            // Nothing wider than the viewport (no sideways scrolling on a phone).
            const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
            expect(overflow, `${p.name}: horizontal overflow at ${view.viewport.width}px`).to.be.at.most(0);
            await page.screenshot({ path: path.join(SCREENSHOTS, `${p.name}-${view.label}-${scheme}.png`), fullPage: true });
            expect(errors, `${p.name} ${view.label} ${scheme}`).to.deep.equal([]);
            await page.close();
          }
        } finally {
          await context.close();
        }
      });
    }
  }

  it('searches from the search box (a plain GET form) and opens a result', async function () {
    const context = await newContext();
    try {
      const { page, errors } = await open(context, `${running.url}/`);
      await page.getByLabel('Search projects').fill('sprockets');
      await page.getByLabel('Search projects').press('Enter');
      await page.waitForURL(/\/search\?q=sprockets$/);
      const results = page.locator('.project-list .project-name');
      expect(await results.allInnerTexts()).to.deep.equal(['gear-box']);
      await results.first().click();
      await page.waitForURL(/\/project\/gear-box\/$/);
      expect(await page.locator('h1').innerText()).to.equal('gear-box 0.5');
      expect(errors).to.deep.equal([]);
    } finally {
      await context.close();
    }
  });

  it('copies the pip install line with the copy button (optional script served as a file)', async function () {
    const context = await newContext({ permissions: ['clipboard-read', 'clipboard-write'] });
    // A clipboard that takes its time (as on a loaded machine, where reading the label right
    // after the click once raced the write): the label must still turn to Copied.
    await context.addInitScript({
      content: 'const write = navigator.clipboard.writeText.bind(navigator.clipboard); navigator.clipboard.writeText = (text) => new Promise((r) => setTimeout(r, 300)).then(() => write(text));',
    });
    try {
      const { page, errors } = await open(context, `${running.url}/project/acme-widgets/`);
      const button = page.locator('.install button.copy');
      expect(await button.isVisible()).to.equal(true);
      await button.click();
      // The label says Copied (for 1.5 s) once the write resolves: wait for it.
      await page.locator('.install button.copy', { hasText: 'Copied' }).waitFor({ timeout: 5000 });
      const copied = await page.evaluate<string>('navigator.clipboard.readText()');
      // makeConfig: no PyPI fallback, so pip needs PyPI too for dependencies: --extra-index-url.
      expect(copied).to.equal(`pip install --extra-index-url ${running.url}/simple/ Acme.Widgets`);
      expect(errors).to.deep.equal([]);
    } finally {
      await context.close();
    }
  });

  it('runs nothing from a hostile README: no script, handler, dialog, frame or form', async function () {
    const context = await newContext();
    try {
      const { page, errors, dialogs } = await open(context, `${running.url}/project/hostile-readme/`);
      const readme = page.locator('.readme');
      // Click everything clickable in the README (but the one safe outside link), then give handlers a moment.
      for (const a of await readme.locator('a:not([href^="https:"]), summary, img').all()) await a.click({ timeout: 2000, noWaitAfter: true }).catch(() => {});
      await page.waitForTimeout(300);
      expect(page.url()).to.equal(`${running.url}/project/hostile-readme/`);
      expect(await page.evaluate<unknown>('window.__pwned ?? null')).to.equal(null);
      expect(dialogs).to.deep.equal([]);
      // (Functions that run in the page are passed as text: this project compiles without DOM types.)
      const found = await page.evaluate<{ scripts: number; handlers: string[]; hrefs: string[]; imgs: string[] }>(`(() => {
        const el = document.querySelector('.readme');
        return {
          scripts: el.querySelectorAll('script, style, iframe, object, embed, form, input, svg').length,
          handlers: [...el.querySelectorAll('*')].flatMap((n) => n.getAttributeNames().filter((a) => a.startsWith('on') || a === 'style')),
          hrefs: [...el.querySelectorAll('a[href]')].map((a) => a.getAttribute('href')),
          imgs: [...el.querySelectorAll('img')].map((i) => i.getAttribute('src')),
        };
      })()`);
      // Sanity check that the probe sees the README at all.
      expect(await readme.locator('h2').first().innerText()).to.equal('Totally normal package');
      expect(found.scripts).to.equal(0);
      expect(found.handlers).to.deep.equal([]);
      expect(found.hrefs).to.deep.equal(['https://example.com/docs']);
      expect(await readme.locator('a[href^="https:"]').getAttribute('rel')).to.equal('nofollow noopener');
      expect(found.imgs).to.deep.equal(['https://img.example.com/ok.png']);
      // The page is still laid out normally (the style injection did not apply).
      expect(await page.locator('.site-header').isVisible()).to.equal(true);
      expect(errors).to.deep.equal([]);
    } finally {
      await context.close();
    }
  });
});
