// Drives the silo's runs page in headless Chromium (puppeteer-core, pinned in package.json) for RunsPageBrowserTests:
// the key form, the runs list, a run's rounds, Pause, then Resume and a round that arrives live, Fork and Cancel. It talks with the test
// over its standard streams: "paused" when the page shows the run paused, then it waits for a line (the test has checked
// the pause and released the run); at the end one line "result <json>". Screenshots go to SHOTS.
'use strict';
const path = require('node:path');
const readline = require('node:readline');
const puppeteer = require('puppeteer-core');

const { PAGE_URL: url, API_KEY: key, RUN_ID: runId, SHOTS: shots, CHROMIUM: chromium } = process.env;
const lines = readline.createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => lines.once('line', resolve));
const say = (text) => process.stdout.write(text + '\n');
const timeout = 300000; // bounds a test that went wrong; every wait is for something the page shows

(async () => {
  const browser = await puppeteer.launch({
    executablePath: chromium, headless: true,
    // As root (CI) Chromium needs --no-sandbox; /dev/shm may be small in containers.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const result = { errors: [] };
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 900 });
    page.on('pageerror', (e) => result.errors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error' && !/status of 401/.test(m.text())) result.errors.push(m.text()); });
    let navigations = 0;
    page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations++; });

    await page.goto(url, { waitUntil: 'load' });
    // Without a key the API answers 401: the page asks for the key (not the browser's password dialog).
    await page.waitForSelector('#key-form:not([hidden])', { timeout });
    result.askedForKey = true;
    await page.type('#key-input', key);
    await page.click('#key-form button[type=submit]');
    const row = `#runs tr[data-run="${runId}"]`;
    await page.waitForSelector(row, { timeout });
    result.listedState = await page.$eval(`${row} td:nth-child(3)`, (e) => e.textContent);
    await page.screenshot({ path: path.join(shots, 'runs.png'), clip: { x: 0, y: 0, width: 900, height: 200 } });

    await page.click(`${row} a`);
    await page.waitForSelector('#rounds tr[data-round="1"]', { timeout });
    await page.waitForSelector('#connection[data-live="true"]', { timeout });
    await page.evaluate(() => { window.sameDocument = 'yes'; }); // gone if the page reloads
    const navigationsBefore = navigations;
    result.roundsBefore = await page.$$eval('#rounds tbody tr', (rows) => rows.map((r) => Number(r.dataset.round)));

    await page.click('#pause');
    await page.waitForFunction(() => document.querySelector('#run-status').textContent === 'paused', { timeout });
    say('paused');
    await nextLine();

    await page.click('#resume');
    await page.waitForSelector('#rounds tr[data-round="2"]', { timeout });
    result.sameDocument = await page.evaluate(() => window.sameDocument);
    result.navigations = navigations - navigationsBefore;
    result.roundsAfter = await page.$$eval('#rounds tbody tr', (rows) => rows.map((r) => Number(r.dataset.round)));
    // Round 2's training steps join the loss chart once they are read.
    await page.waitForFunction(() => document.querySelectorAll('#charts canvas').length >= 4, { timeout });
    await page.waitForFunction(() => document.querySelector('#run-status').textContent === 'completed', { timeout });
    result.status = await page.$eval('#run-status', (e) => e.textContent);
    // Read the charts once every one holds its canvas, in the same evaluation that sees it: a live update redraws them
    // (new holders first, each chart's canvas a moment later), and a CI run read all five between the two, twice: once
    // between the status change and the next render, once just after a check that had seen them drawn. A chart that never
    // draws still fails here (its holder's text, such as "no data yet", goes into the result).
    const readCharts = () => [...document.querySelectorAll('#charts .chart')].map((c) => ({
      title: c.dataset.chart, drawn: !!c.querySelector('canvas'), text: c.textContent.slice(0, 200) }));
    const drawn = await page.waitForFunction(() => {
      const charts = [...document.querySelectorAll('#charts .chart')].map((c) => ({
        title: c.dataset.chart, drawn: !!c.querySelector('canvas'), text: c.textContent.slice(0, 200) }));
      return charts.length >= 5 && charts.every((c) => c.drawn) ? charts : false;
    }, { timeout }).catch(() => null);
    result.charts = drawn ? await drawn.jsonValue() : await page.evaluate(readCharts);
    result.columns = await page.$$eval('#rounds thead th', (ths) => ths.map((t) => t.textContent));
    await page.screenshot({ path: path.join(shots, 'run.png'), fullPage: true });

    // Fork from round 1 with an override: the page links the new run; there, Cancel (after its confirmation) cancels it.
    await page.$eval('#fork-round', (e) => { e.value = '1'; });
    await page.type('#fork-set', 'loss.beta=0.2');
    await page.click('#fork-form button[type=submit]');
    await page.waitForSelector('#action-result a', { timeout });
    result.forked = await page.$eval('#action-result a', (e) => e.textContent);
    await page.click('#action-result a');
    await page.waitForFunction((id) => document.querySelector('#run-title').textContent === id
      && document.querySelector('#run-summary').textContent.includes('forked from'), { timeout }, result.forked);
    page.once('dialog', (d) => d.accept());
    await page.click('#cancel');
    await page.waitForFunction(() => document.querySelector('#run-status').textContent === 'cancelled', { timeout });
    result.forkStatus = await page.$eval('#run-status', (e) => e.textContent);
  } finally {
    await browser.close();
  }
  say('result ' + JSON.stringify(result));
  process.exit(0);
})().catch((e) => { console.error(e && e.stack ? e.stack : String(e)); process.exit(1); });
