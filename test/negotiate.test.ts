import { expect } from 'chai';
import { HTML_V1, JSON_V1, TEXT_HTML, negotiate, negotiateRequest, parseAccept } from '../lib/simple/negotiate.js';

const PIP = 'application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01';
const UV = 'application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.2, text/html; q=0.01';

describe('content negotiation (PEP 691)', () => {
  describe('negotiate', () => {
    it("gives pip's Accept header the JSON API", () => {
      expect(negotiate(PIP)).to.equal(JSON_V1);
    });

    it('answers each header of clients that take turns, the same header asked twice in a row included', () => {
      // The last header's answer is kept apart from the memo: it must never answer another header.
      const seq: [string | undefined, string | null][] = [
        [PIP, JSON_V1], [PIP, JSON_V1], ['text/html', TEXT_HTML], ['image/png', null], ['image/png', null],
        [PIP, JSON_V1], [undefined, TEXT_HTML], [HTML_V1, HTML_V1], ['', TEXT_HTML], [PIP, JSON_V1], ['image/png', null], ['', TEXT_HTML],
      ];
      for (const [accept, want] of seq) expect(negotiate(accept), String(accept)).to.equal(want);
    });

    it("gives uv's Accept header the JSON API", () => {
      expect(negotiate(UV)).to.equal(JSON_V1);
    });

    it('gives text/html to a client that asks for text/html', () => {
      expect(negotiate('text/html')).to.equal(TEXT_HTML);
      expect(negotiate('text/html; charset=utf-8')).to.equal(TEXT_HTML);
    });

    it('gives the versioned HTML type to a client that asks for it', () => {
      expect(negotiate(HTML_V1)).to.equal(HTML_V1);
      expect(negotiate('application/vnd.pypi.simple.latest+html')).to.equal(HTML_V1);
    });

    it('treats a missing, empty or */* Accept header as "anything" and answers text/html', () => {
      expect(negotiate(undefined)).to.equal(TEXT_HTML);
      expect(negotiate('')).to.equal(TEXT_HTML);
      expect(negotiate('   ')).to.equal(TEXT_HTML);
      expect(negotiate('*/*')).to.equal(TEXT_HTML);
    });

    it('answers application/vnd.pypi.simple.latest+json as v1+json', () => {
      expect(negotiate('application/vnd.pypi.simple.latest+json')).to.equal(JSON_V1);
    });

    it('lets q-values decide, not the order of the header', () => {
      expect(negotiate('text/html;q=0.5, application/vnd.pypi.simple.v1+json')).to.equal(JSON_V1);
      expect(negotiate('application/vnd.pypi.simple.v1+json;q=0.5, text/html')).to.equal(TEXT_HTML);
      expect(negotiate('text/html; q=0.01, application/vnd.pypi.simple.v1+html; q=0.1, application/vnd.pypi.simple.v1+json')).to.equal(JSON_V1);
      expect(negotiate('application/vnd.pypi.simple.v1+json; q=0.2, application/vnd.pypi.simple.v1+html; q=0.9')).to.equal(HTML_V1);
    });

    it('compares media types case-insensitively', () => {
      expect(negotiate('Application/VND.PyPI.Simple.V1+JSON')).to.equal(JSON_V1);
      expect(negotiate('TEXT/HTML')).to.equal(TEXT_HTML);
    });

    it('lets a more specific range override a wildcard (q=0 excludes a type)', () => {
      expect(negotiate('*/*, text/html;q=0')).to.be.oneOf([JSON_V1, HTML_V1]);
      expect(negotiate('application/vnd.pypi.simple.v1+json, text/html;q=0')).to.equal(JSON_V1);
      expect(negotiate('text/*')).to.equal(TEXT_HTML);
      expect(negotiate('application/*')).to.be.oneOf([JSON_V1, HTML_V1]);
    });

    it('returns null (406) when only application/json is acceptable', () => {
      expect(negotiate('application/json')).to.equal(null);
    });

    it('returns null (406) for */*;q=0 and other all-refusing headers', () => {
      expect(negotiate('*/*;q=0')).to.equal(null);
      expect(negotiate('text/html;q=0, application/vnd.pypi.simple.v1+json;q=0, application/vnd.pypi.simple.v1+html;q=0')).to.equal(null);
      expect(negotiate('image/png, application/xml')).to.equal(null);
    });

    it('gives the same answer when asked twice (memoization does not change results)', () => {
      for (const h of [PIP, 'application/json', 'text/html', '*/*;q=0']) expect(negotiate(h)).to.equal(negotiate(h));
    });

    it('never throws on malformed headers', () => {
      const junk = [
        ',',
        ',,,',
        ';',
        ';;;q=1',
        '/',
        'text/',
        '/html',
        'text/html;q=',
        'text/html;q=abc',
        'text/html;q=-1',
        'text/html;q=NaN',
        'text/html;q=1e999',
        'text/html;;;',
        'a/b/c',
        '"text/html"',
        '\u0000\u0001\u007f',
        'text/html; q="0.5"',
        '*/*;q=0.5;q=0',
        'x'.repeat(20_000),
        `${'text/html;q=0.1,'.repeat(2_000)}`,
        '\u00e9/\u00e8',
        '=;=,=',
      ];
      for (const h of junk) {
        const r = negotiate(h);
        expect([JSON_V1, HTML_V1, TEXT_HTML, null], `Accept: ${JSON.stringify(h.slice(0, 40))}`).to.include(r);
      }
    });
  });

  describe('negotiateRequest (?format= override)', () => {
    it('uses Accept when there is no format parameter', () => {
      expect(negotiateRequest(PIP, undefined)).to.equal(JSON_V1);
      expect(negotiateRequest('text/html', '')).to.equal(TEXT_HTML);
    });

    it('lets ?format= override the Accept header', () => {
      expect(negotiateRequest('text/html', JSON_V1)).to.equal(JSON_V1);
      expect(negotiateRequest(PIP, 'text/html')).to.equal(TEXT_HTML);
      expect(negotiateRequest(undefined, HTML_V1)).to.equal(HTML_V1);
      expect(negotiateRequest('application/json', JSON_V1)).to.equal(JSON_V1);
    });

    it('refuses a format that is not one we serve', () => {
      expect(negotiateRequest(PIP, 'application/json')).to.equal(null);
    });
  });

  describe('parseAccept', () => {
    it('parses types, subtypes and q-values', () => {
      const r = parseAccept(PIP);
      expect(r).to.have.length(3);
      expect(r[0]).to.deep.include({ type: 'application', subtype: 'vnd.pypi.simple.v1+json', q: 1 });
      expect(r[1]).to.deep.include({ type: 'application', subtype: 'vnd.pypi.simple.v1+html', q: 0.1 });
      expect(r[2]).to.deep.include({ type: 'text', subtype: 'html', q: 0.01 });
    });

    it('keeps q within [0, 1] and skips entries that are not media ranges', () => {
      const r = parseAccept('text/html;q=7, nonsense, application/x;q=-2, /x, y/');
      expect(r.map((x) => `${x.type}/${x.subtype}`)).to.deep.equal(['text/html', 'application/x']);
      for (const x of r) expect(x.q).to.be.within(0, 1);
      expect(r[0].q).to.equal(1);
      expect(r[1].q).to.equal(0);
    });

    it('never throws', () => {
      for (const h of ['', ',', ';', '\u0000', 'a;b=c;d', 'x'.repeat(10_000)]) expect(() => parseAccept(h)).not.to.throw();
    });
  });
});
