import { expect } from 'chai';
import { DIST_EXTENSIONS, isDistFilename, parseFilename, type ParsedFilename } from '../lib/catalog/filename.js';
import { isValidProjectName, normalizeName } from '../lib/core/names.js';

type Expected = Omit<ParsedFilename, 'filename' | 'packagetype'>;

function wheel(
  name: string,
  project: string,
  version: string,
  buildTag: string | null,
  pythonTag: string,
  abiTag: string,
  platformTag: string,
): Expected {
  return { kind: 'wheel', name, project, version, buildTag, pythonTag, abiTag, platformTag, extension: '.whl' };
}

function sdist(name: string, project: string, version: string, extension: string): Expected {
  return {
    kind: 'sdist',
    name,
    project,
    version,
    buildTag: null,
    pythonTag: 'source',
    abiTag: null,
    platformTag: null,
    extension,
  };
}

function egg(name: string, project: string, version: string, pythonTag: string): Expected {
  return { kind: 'egg', name, project, version, buildTag: null, pythonTag, abiTag: null, platformTag: null, extension: '.egg' };
}

const PACKAGETYPE = { wheel: 'bdist_wheel', sdist: 'sdist', egg: 'bdist_egg' } as const;

const TABLE: readonly (readonly [string, Expected])[] = [
  // ---- wheels
  ['requests-2.31.0-py3-none-any.whl', wheel('requests', 'requests', '2.31.0', null, 'py3', 'none', 'any')],
  ['six-1.16.0-py2.py3-none-any.whl', wheel('six', 'six', '1.16.0', null, 'py2.py3', 'none', 'any')],
  [
    'PyYAML-6.0.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl',
    wheel('PyYAML', 'pyyaml', '6.0.1', null, 'cp311', 'cp311', 'manylinux_2_17_x86_64.manylinux2014_x86_64'),
  ],
  ['torch-2.1.0+cpu-cp311-cp311-linux_x86_64.whl', wheel('torch', 'torch', '2.1.0+cpu', null, 'cp311', 'cp311', 'linux_x86_64')],
  [
    'jaxlib-0.4.25+cuda12.cudnn89-cp311-cp311-manylinux2014_x86_64.whl',
    wheel('jaxlib', 'jaxlib', '0.4.25+cuda12.cudnn89', null, 'cp311', 'cp311', 'manylinux2014_x86_64'),
  ],
  ['foo-1.0-1-py3-none-any.whl', wheel('foo', 'foo', '1.0', '1', 'py3', 'none', 'any')],
  ['foo-1.0-123abc-py3-none-any.whl', wheel('foo', 'foo', '1.0', '123abc', 'py3', 'none', 'any')],
  ['numpy-1.26.4-cp312-cp312-win_amd64.whl', wheel('numpy', 'numpy', '1.26.4', null, 'cp312', 'cp312', 'win_amd64')],
  [
    'cryptography-42.0.5-cp39-abi3-macosx_10_12_universal2.whl',
    wheel('cryptography', 'cryptography', '42.0.5', null, 'cp39', 'abi3', 'macosx_10_12_universal2'),
  ],
  [
    'backports.zoneinfo-0.2.1-cp38-cp38-manylinux1_x86_64.whl',
    wheel('backports.zoneinfo', 'backports-zoneinfo', '0.2.1', null, 'cp38', 'cp38', 'manylinux1_x86_64'),
  ],
  [
    'ruamel.yaml.clib-0.2.8-cp312-cp312-musllinux_1_1_x86_64.whl',
    wheel('ruamel.yaml.clib', 'ruamel-yaml-clib', '0.2.8', null, 'cp312', 'cp312', 'musllinux_1_1_x86_64'),
  ],
  [
    'zope.interface-6.2-cp311-cp311-macosx_11_0_arm64.whl',
    wheel('zope.interface', 'zope-interface', '6.2', null, 'cp311', 'cp311', 'macosx_11_0_arm64'),
  ],
  ['typing_extensions-4.10.0-py3-none-any.whl', wheel('typing_extensions', 'typing-extensions', '4.10.0', null, 'py3', 'none', 'any')],
  ['foo__bar-1.0-py3-none-any.whl', wheel('foo__bar', 'foo-bar', '1.0', null, 'py3', 'none', 'any')],
  ['foo._bar-1.0-py3-none-any.whl', wheel('foo._bar', 'foo-bar', '1.0', null, 'py3', 'none', 'any')],
  ['Django-4.2.11-py3-none-any.whl', wheel('Django', 'django', '4.2.11', null, 'py3', 'none', 'any')],
  ['black-24.1a1-py3-none-any.whl', wheel('black', 'black', '24.1a1', null, 'py3', 'none', 'any')],
  ['foo-1.0.post1-py3-none-any.whl', wheel('foo', 'foo', '1.0.post1', null, 'py3', 'none', 'any')],
  ['foo-1.0.dev3-py3-none-any.whl', wheel('foo', 'foo', '1.0.dev3', null, 'py3', 'none', 'any')],
  ['foo-1!2.0-py3-none-any.whl', wheel('foo', 'foo', '1!2.0', null, 'py3', 'none', 'any')],
  ['pydantic_core-2.16.3-cp312-none-win32.whl', wheel('pydantic_core', 'pydantic-core', '2.16.3', null, 'cp312', 'none', 'win32')],
  [
    'SQLAlchemy-2.0.28-cp312-cp312-macosx_11_0_arm64.whl',
    wheel('SQLAlchemy', 'sqlalchemy', '2.0.28', null, 'cp312', 'cp312', 'macosx_11_0_arm64'),
  ],
  [
    'opencv_python-4.9.0.80-cp37-abi3-manylinux_2_17_aarch64.manylinux2014_aarch64.whl',
    wheel('opencv_python', 'opencv-python', '4.9.0.80', null, 'cp37', 'abi3', 'manylinux_2_17_aarch64.manylinux2014_aarch64'),
  ],
  ['Pillow-10.2.0-pp310-pypy310_pp73-win_amd64.whl', wheel('Pillow', 'pillow', '10.2.0', null, 'pp310', 'pypy310_pp73', 'win_amd64')],
  [
    'pywin32-306-cp311.cp312-cp311.cp312.abi3-win_amd64.win32.whl',
    wheel('pywin32', 'pywin32', '306', null, 'cp311.cp312', 'cp311.cp312.abi3', 'win_amd64.win32'),
  ],
  ['FOO-1.0-py3-none-any.WHL', wheel('FOO', 'foo', '1.0', null, 'py3', 'none', 'any')],
  // ---- sdists
  ['Django-4.2.tar.gz', sdist('Django', 'django', '4.2', '.tar.gz')],
  ['requests-2.31.0.tar.gz', sdist('requests', 'requests', '2.31.0', '.tar.gz')],
  ['python-dateutil-2.8.2.tar.gz', sdist('python-dateutil', 'python-dateutil', '2.8.2', '.tar.gz')],
  ['foo-1!2.0.tar.gz', sdist('foo', 'foo', '1!2.0', '.tar.gz')],
  ['Zope.Interface-3.8.0.zip', sdist('Zope.Interface', 'zope-interface', '3.8.0', '.zip')],
  ['backports.zoneinfo-0.2.1.tar.gz', sdist('backports.zoneinfo', 'backports-zoneinfo', '0.2.1', '.tar.gz')],
  ['ruamel.yaml.clib-0.2.8.tar.gz', sdist('ruamel.yaml.clib', 'ruamel-yaml-clib', '0.2.8', '.tar.gz')],
  ['foo__bar-1.0.tar.bz2', sdist('foo__bar', 'foo-bar', '1.0', '.tar.bz2')],
  ['Foo.-_Bar-0.1.tar.gz', sdist('Foo.-_Bar', 'foo-bar', '0.1', '.tar.gz')],
  ['pytz-2013b.tar.bz2', sdist('pytz', 'pytz', '2013b', '.tar.bz2')],
  ['simplejson-2.0.9.tgz', sdist('simplejson', 'simplejson', '2.0.9', '.tgz')],
  ['xz_pkg-1.0.tar.xz', sdist('xz_pkg', 'xz-pkg', '1.0', '.tar.xz')],
  ['Babel-0.9.6.zip', sdist('Babel', 'babel', '0.9.6', '.zip')],
  ['Django-5.0rc1.tar.gz', sdist('Django', 'django', '5.0rc1', '.tar.gz')],
  ['my-package-1.0.0a1.tar.gz', sdist('my-package', 'my-package', '1.0.0a1', '.tar.gz')],
  ['foo-1.0.post2.dev3.tar.gz', sdist('foo', 'foo', '1.0.post2.dev3', '.tar.gz')],
  ['foo-1.0+local.1.tar.gz', sdist('foo', 'foo', '1.0+local.1', '.tar.gz')],
  ['FOO-1.0.TAR.GZ', sdist('FOO', 'foo', '1.0', '.tar.gz')],
  ['foo-v1.2.tar.gz', sdist('foo', 'foo', 'v1.2', '.tar.gz')],
  // ambiguous sdist names (see the rule in parseSdist)
  ['foo-bar-1.0-1.tar.gz', sdist('foo-bar', 'foo-bar', '1.0-1', '.tar.gz')],
  ['foo-1.0-dev.tar.gz', sdist('foo', 'foo', '1.0-dev', '.tar.gz')],
  ['foo-2fast-1.0.tar.gz', sdist('foo-2fast', 'foo-2fast', '1.0', '.tar.gz')],
  ['pkg-2.0-beta-x.tar.gz', sdist('pkg', 'pkg', '2.0-beta-x', '.tar.gz')],
  ['abc-1-2.0.tar.gz', sdist('abc-1', 'abc-1', '2.0', '.tar.gz')],
  ['foo-1.0-beta.zip', sdist('foo', 'foo', '1.0-beta', '.zip')],
  ['foo-2.0-20240101-nightly.tar.gz', sdist('foo', 'foo', '2.0-20240101-nightly', '.tar.gz')],
  // ---- eggs
  ['setuptools-0.6c11-py2.7.egg', egg('setuptools', 'setuptools', '0.6c11', 'py2.7')],
  ['foo-1.0.egg', egg('foo', 'foo', '1.0', '')],
  ['psycopg2-2.4.5-py2.7-linux-x86_64.egg', egg('psycopg2', 'psycopg2', '2.4.5', 'py2.7')],
  ['zope.interface-4.1.3-py3.11-win-amd64.egg', egg('zope.interface', 'zope-interface', '4.1.3', 'py3.11')],
  ['My_Pkg-1.0-py3.11.egg', egg('My_Pkg', 'my-pkg', '1.0', 'py3.11')],
];

const NOT_PARSEABLE: readonly string[] = [
  'foo.whl',
  'foo-1.0.whl',
  'foo-1.0-py3-none.whl',
  'foo-1.0-1-2-py3-none-any.whl',
  'foo-1.0-x1-py3-none-any.whl',
  'foo--py3-none-any.whl',
  'foo-1.0--none-any.whl',
  '-1.0-py3-none-any.whl',
  '.foo-1.0-py3-none-any.whl',
  'foo bar-1.0-py3-none-any.whl',
  'foo-1.0-py3-none-any.whl.metadata',
  '.whl',
  'README.md',
  '../evil-1.0.tar.gz',
  'a/b-1.0.tar.gz',
  'a\\b-1.0.tar.gz',
  'foo-1.0.tar.gz\u0000',
  'foo-1.0\u0000.tar.gz',
  'foo-1.0\u0007.tar.gz',
  'foo-1.0.tar.gz\n',
  '.hidden-1.0.tar.gz',
  'nodigits.tar.gz',
  'no-digits-here.tar.gz',
  '-1.0.tar.gz',
  'foo-.tar.gz',
  '.tar.gz',
  'foo bar-1.0.tar.gz',
  'foo-1.0 .tar.gz',
  'f\u00f6o-1.0.tar.gz',
  'foo-1.0.tar',
  'foo-1.0.gz',
  'foo-1.0.tar.gz.asc',
  'foo-1.0.egg-info',
  'foo.egg',
  'foo-1.0-cp311.egg',
  'foo-1.0-py3.11-linux x86.egg',
  '',
  `${'a'.repeat(1100)}-1.0.tar.gz`,
];

describe('filename: parseFilename table', () => {
  it('has a substantial table', () => {
    expect(TABLE.length).to.be.at.least(45);
    expect(new Set(TABLE.map(([f]) => f)).size).to.equal(TABLE.length);
  });

  for (const [filename, expected] of TABLE) {
    it(`parses ${filename}`, () => {
      expect(parseFilename(filename)).to.deep.equal({
        filename,
        packagetype: PACKAGETYPE[expected.kind],
        ...expected,
      });
    });
  }

  for (const filename of NOT_PARSEABLE) {
    it(`rejects ${JSON.stringify(filename.length > 60 ? `${filename.slice(0, 20)}...` : filename)}`, () => {
      expect(parseFilename(filename)).to.equal(null);
    });
  }
});

describe('filename: extensions', () => {
  it('DIST_EXTENSIONS lists every known extension, longest first', () => {
    expect([...DIST_EXTENSIONS]).to.have.members(['.whl', '.tar.gz', '.zip', '.tar.bz2', '.tgz', '.tar.xz', '.egg']);
    expect(DIST_EXTENSIONS).to.have.lengthOf(7);
    for (let i = 1; i < DIST_EXTENSIONS.length; i++) {
      expect(DIST_EXTENSIONS[i - 1].length).to.be.at.least(DIST_EXTENSIONS[i].length);
    }
  });

  it('isDistFilename matches extensions case-insensitively, parseable or not', () => {
    for (const f of ['foo.whl', 'foo-1.0.tar.gz', 'x.TAR.GZ', 'x.Tgz', 'a.tar.bz2', 'a.tar.xz', 'a.ZIP', 'setuptools.egg', '.whl']) {
      expect(isDistFilename(f), f).to.equal(true);
    }
    for (const f of ['README.md', 'foo.gz', 'foo.tar', 'foo-1.0.tar.gz.asc', 'foo.whl.metadata', 'foo.egg-info', '', 'whl']) {
      expect(isDistFilename(f), f).to.equal(false);
    }
  });

  it('reports the canonical extension and keeps the original filename', () => {
    const parsed = parseFilename('Foo-1.0.Tar.Bz2');
    expect(parsed?.extension).to.equal('.tar.bz2');
    expect(parsed?.filename).to.equal('Foo-1.0.Tar.Bz2');
    expect(parsed?.name).to.equal('Foo');
  });
});

describe('filename: robustness', () => {
  function rng(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  const PIECES = [
    '-', '-', '.', '_', '1', '0', '2', 'a', 'b', 'rc', 'dev', 'post', 'foo', 'Bar', 'py3', 'none', 'any', 'cp311',
    '+', '!', '/', '\\', '\u0000', '\n', ' ', '\u00e9', '\ud83d', '.whl', '.tar.gz', '.ZIP', '.egg', '.tgz', 'v',
  ];

  it('never throws, and every result satisfies the invariants', () => {
    const rand = rng(2024);
    let parsedCount = 0;
    for (let n = 0; n < 20_000; n++) {
      const pick = (xs: readonly string[]): string => xs[Math.floor(rand() * xs.length)];
      let s = '';
      if (rand() < 0.5) {
        // free-form noise
        const len = Math.floor(rand() * 12);
        for (let k = 0; k < len; k++) s += pick(PIECES);
      } else {
        // plausible "{name}-{version}[-tags]" with a few random insertions
        s = `${pick(['foo', 'Foo.bar', 'a_b', 'x-y', 'pkg2'])}-${pick(['1', '1.0', '2.0rc1', '1!3', '0.1-1', 'v2'])}`;
        if (rand() < 0.5) s += pick(['-py3-none-any', '-1-cp311-abi3-linux_x86_64', '-py2.7', '-dev', '-x-1']);
        const edits = Math.floor(rand() * 3);
        for (let k = 0; k < edits; k++) {
          const at = Math.floor(rand() * (s.length + 1));
          s = s.slice(0, at) + pick(PIECES) + s.slice(at);
        }
      }
      if (rand() < 0.8) s += pick(['.whl', '.tar.gz', '.zip', '.egg', '.tar.bz2']);
      const parsed = parseFilename(s);
      if (parsed === null) continue;
      parsedCount++;
      expect(parsed.filename).to.equal(s);
      expect(parsed.name).to.match(/^[A-Za-z0-9_][A-Za-z0-9._-]*$/);
      expect(parsed.version).to.match(/^[A-Za-z0-9._+!-]+$/);
      expect(parsed.project).to.equal(normalizeName(parsed.name));
      expect(isDistFilename(s)).to.equal(true);
      expect(s).to.not.match(/[/\\\u0000-\u001f]/);
      if (parsed.kind === 'wheel') {
        expect(parsed.name).to.not.include('-');
        expect(parsed.version).to.not.include('-');
      }
    }
    expect(parsedCount).to.be.greaterThan(2000);
  });

  it('handles long inputs quickly', () => {
    const started = Date.now();
    expect(parseFilename(`${'a-'.repeat(500)}x.tar.gz`)).to.equal(null);
    const parsed = parseFilename(`${'a-'.repeat(400)}1.0.tar.gz`);
    expect(parsed?.version).to.equal('1.0');
    expect(parsed?.name).to.equal(`${'a-'.repeat(399)}a`);
    expect(Date.now() - started).to.be.below(1000);
  });
});

describe('names', () => {
  it('normalizeName collapses runs of -, _ and . and lower-cases', () => {
    const cases: readonly (readonly [string, string])[] = [
      ['Django', 'django'],
      ['Zope.Interface', 'zope-interface'],
      ['foo__bar', 'foo-bar'],
      ['foo.-_.bar', 'foo-bar'],
      ['ruamel.yaml.clib', 'ruamel-yaml-clib'],
      ['typing_extensions', 'typing-extensions'],
      ['A-B', 'a-b'],
      ['abc', 'abc'],
    ];
    for (const [input, expected] of cases) expect(normalizeName(input), input).to.equal(expected);
  });

  it('isValidProjectName follows the core-metadata rule', () => {
    for (const ok of ['a', 'Z', '9', 'foo', 'foo-bar', 'foo.bar_baz', 'Foo2', 'a-_.b']) {
      expect(isValidProjectName(ok), ok).to.equal(true);
    }
    for (const bad of ['', '-foo', 'foo-', '.foo', 'foo.', '_foo', 'foo_', 'foo bar', 'f\u00f6o', 'foo/bar', 'foo\n', '\u212aelvin']) {
      expect(isValidProjectName(bad), JSON.stringify(bad)).to.equal(false);
    }
  });
});
