"""Build the synthbench docs site without Quarto: chapters and tutorials from `nbs/` (nbconvert, with the outputs the
notebooks store), the architecture page (`docs/architecture.md`), a module index and an API reference for every name in
`synthbench.*.__all__` (from docstrings and per-parameter comments), then check every link of the built site.

    python docs/build.py OUT_DIR            # build, then check links (exit 1 on a broken one)
    python docs/build.py OUT_DIR --no-check

Internal links and anchors must resolve; external links are only checked for syntax (no network)."""

from __future__ import annotations
import argparse, html, importlib, inspect, json, pkgutil, re, shutil, sys, time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit, unquote

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / 'nbs'
SITE_URL = 'https://synthbench.github.io/synthbench/'  # [project.urls] Documentation

CSS = """
body{margin:0;font:15px/1.55 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1f2328}
#side{position:fixed;top:0;bottom:0;left:0;width:250px;overflow:auto;background:#f6f8fa;border-right:1px solid #d0d7de;padding:12px 14px;font-size:13.5px}
#side h2{font-size:12px;text-transform:uppercase;color:#57606a;margin:16px 0 4px}#side ul{list-style:none;padding:0;margin:0}
#side li{margin:2px 0}#side a{color:#0969da;text-decoration:none}#side a.here{font-weight:600;color:#1f2328}
main{margin-left:280px;max-width:1000px;padding:16px 28px 60px}
pre,code{font:13px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}pre{background:#f6f8fa;padding:10px;overflow:auto;border-radius:6px}
.prompt,.jp-InputArea-prompt,.jp-OutputPrompt,.jp-InputPrompt{display:none}.jp-OutputArea-output pre{background:#fff;border-left:3px solid #d0d7de}
.output_subarea pre,.output_subarea>div,.output_subarea>table{background:#fff;border-left:3px solid #8fbcef;padding-left:10px}
.output_subarea{margin:0 0 8px;overflow:auto}.jp-Cell{margin:10px 0}table{border-collapse:collapse}td,th{border:1px solid #d0d7de;padding:3px 8px;vertical-align:top}
.api{border-top:1px solid #d0d7de;padding-top:8px;margin-top:18px}.sig{background:#eef3f8}.kind{color:#57606a;font-size:12px}
.anchor{color:#8c959f;text-decoration:none;margin-left:6px}
"""


def _md():
    from markdown_it import MarkdownIt

    md = MarkdownIt('commonmark', {'html': False}).enable('table')
    return md


def slug(text: str) -> str:
    "A heading's anchor: lower case, words joined by '-' (what nbconvert writes for markdown headings too)."
    return re.sub(r'[^\w\- ]', '', text).strip().replace(' ', '-')


def _md_html(text: str) -> str:
    "Markdown to HTML with an id on every heading."
    out = _md().render(text)

    def head(m):
        inner = m.group(2)
        plain = html.unescape(re.sub('<[^>]+>', '', inner))
        return f'<h{m.group(1)} id="{html.escape(slug(plain))}">{inner}</h{m.group(1)}>'

    return re.sub(r'<h([1-6])>(.*?)</h\1>', head, out)


def nb_title(path: Path) -> tuple[str, str]:
    "(title, one-line summary) from a notebook's first `# Title` and `> summary` markdown."
    nb = json.loads(path.read_text(encoding='utf-8'))
    for c in nb['cells']:
        if c['cell_type'] != 'markdown':
            continue
        s = ''.join(c['source'])
        m = re.search(r'^#\s+(.+)$', s, re.M)
        if m:
            d = re.search(r'^>\s*(.+(?:\n>.*)*)', s, re.M)  # a summary may wrap over several '>' lines
            return m.group(1).strip(), ' '.join(l.lstrip('>').strip() for l in d.group(1).splitlines()) if d else ''
    return path.stem, ''


def nb_module(path: Path) -> str | None:
    "The module a notebook exports (`#| default_exp name`)."
    nb = json.loads(path.read_text(encoding='utf-8'))
    for c in nb['cells']:
        m = re.search(r'^#\|\s*default_exp\s+(\S+)', ''.join(c['source']), re.M)
        if c['cell_type'] == 'code' and m:
            return m.group(1)
    return None


def modules() -> list[str]:
    "Every public module of the exported package, in name order."
    import synthbench

    return sorted(
        m.name
        for m in pkgutil.walk_packages(synthbench.__path__, 'synthbench.')
        if not m.ispkg and not any(part.startswith('_') for part in m.name.split('.'))
    )


class Site:
    "Pages of the site: (path relative to the site, title) in sidebar sections, and a page writer with the shared layout."

    def __init__(self, out: Path):
        self.out, self.sections = out, {}

    def add(self, section: str, rel: str, title: str):
        self.sections.setdefault(section, []).append((rel, title))

    def write(self, rel: str, title: str, body: str):
        up = '../' * rel.count('/')
        side = [f'<a href="{up}index.html"><b>synthbench</b></a>']
        for sec, pages in self.sections.items():
            side.append(f'<h2>{html.escape(sec)}</h2><ul>')
            side += [f'<li><a href="{up}{r}"{" class=here" if r == rel else ""}>{html.escape(t)}</a></li>' for r, t in pages]
            side.append('</ul>')
        p = self.out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        plotly = ''
        if 'Plotly.newPlot(' in body:
            js = self.out / '_static' / 'plotly.min.js'
            if not js.exists():
                import plotly as _pl

                js.parent.mkdir(exist_ok=True)
                shutil.copy(Path(_pl.__file__).parent / 'package_data' / 'plotly.min.js', js)
            plotly = f'<script src="{up}_static/plotly.min.js"></script>'
        p.write_text(
            f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} · synthbench</title>'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><link rel="stylesheet" href="{up}style.css">{plotly}</head>'
            f'<body><nav id="side">{"".join(side)}</nav><main>{body}</main></body></html>',
            encoding='utf-8',
        )


def _fix_nb_links(body: str, here: str, names: dict[str, str], src: Path | None = None) -> str:
    "Links between notebooks (`20_generate.ipynb`) point at their pages; backticked public names link to the API reference."
    up = '../' * here.count('/')

    def nb_link(m):
        target, frag = m.group(2), m.group(3) or ''
        t = ((src.parent if src else NBS) / unquote(target)).resolve()
        if not t.exists():
            return m.group(0)  # left as it is: the link check reports it
        if t == (NBS / 'index.ipynb').resolve():
            page = 'index'
        elif t.parent == NBS.resolve():
            page = f'chapters/{t.stem}'
        elif t.parent == (NBS / 'tutorials').resolve():
            page = f'tutorials/{t.stem}'
        else:
            return m.group(0)
        return f'{m.group(1)}"{up}{page}.html{frag}"'

    body = re.sub(r'(href=)"((?!https?:)[^"#]+\.ipynb)(#[^"]*)?"', nb_link, body)
    body = body.replace(f'href="{SITE_URL}', f'href="{up}')  # absolute links into this site (llms.txt needs them) are checked as internal

    def code_link(m):
        n = html.unescape(m.group(2))
        if m.group(1) or n not in names:
            return m.group(0)
        return f'<a href="{up}{names[n]}">{m.group(0)}</a>'

    return re.sub(r'(<a [^>]*>)?<code>([A-Za-z_]\w*)(?:\(\))?</code>', code_link, body)


def _plain_code(source, language='python', metadata=None) -> str:
    return '<div class="highlight"><pre>' + html.escape(source) + '</pre></div>'


def _pygments_code(source, language='python', metadata=None) -> str:
    from pygments import highlight
    from pygments.lexers import PythonLexer
    from pygments.formatters import HtmlFormatter

    return '<div class="highlight"><pre>' + highlight(source, PythonLexer(), HtmlFormatter(nowrap=True)) + '</pre></div>'


def render_notebook(path: Path, highlight: bool = False) -> str:
    "A notebook's cells and stored outputs as an HTML fragment (nbconvert's basic template: no page chrome, no prompts)."
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(path), as_version=4)
    nb.cells = [c for c in nb.cells if not re.match(r'\s*#\|\s*(hide|default_exp)\b', c.source)]
    for c in nb.cells:  # directives are for nbdev, not the reader
        c.source = re.sub(r'^#\|.*\n?', '', c.source, flags=re.M)
    for i, o in enumerate(o for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', [])):
        fig = (o.get('data') or {}).get('application/vnd.plotly.v1+json')
        if fig and 'text/html' not in o['data']:  # stored compactly (JSON only): drawn by plotly.js shipped with the site
            js = json.dumps({'data': fig.get('data', []), 'layout': fig.get('layout', {})}).replace('</', '<\\/')
            o['data']['text/html'] = (
                f'<div class="plotly-fig" id="fig-{i}" style="height:{(fig.get("layout") or {}).get("height", 450)}px"></div>'
                f'<script>(function(f){{Plotly.newPlot("fig-{i}", f.data, f.layout, {{responsive: true}})}})({js})</script>'
            )
    hl = _pygments_code if highlight else _plain_code  # nbconvert's IPython lexer takes most of a build's time
    body, _ = HTMLExporter(template_name='basic', exclude_anchor_links=True, filters={'highlight_code': hl}).from_notebook_node(nb)
    return body


# --- API reference -------------------------------------------------------------------------------------------------


def _sig(obj) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return ''


def _params(obj) -> str:
    "A table of the parameters' per-line comments (nbdev docments), when there are any."
    try:
        from fastcore.docments import docments

        d = docments(obj, full=True)
    except Exception:
        return ''
    rows = [(k, v) for k, v in d.items() if k not in ('return', 'self') and v.get('docment')]
    if not rows:
        return ''
    cells = ''.join(
        f'<tr><td><code>{html.escape(k)}</code></td><td><code>{html.escape(str(v["default"]) if v["default"] is not inspect._empty else "")}</code></td>'
        f'<td>{html.escape(v["docment"])}</td></tr>'
        for k, v in rows
    )
    return f'<table><tr><th>parameter</th><th>default</th><th>what it is</th></tr>{cells}</table>'


def api_entry(mod, name: str) -> str:
    obj = getattr(mod, name)
    kind = 'class' if inspect.isclass(obj) else 'function' if callable(obj) else 'value'
    doc = inspect.getdoc(obj) if kind == 'function' else None
    if kind == 'class' and vars(obj).get('__doc__'):
        doc = inspect.cleandoc(vars(obj)['__doc__'])  # not a base class's (pydantic's)
    head = f'<h3 id="{html.escape(name)}"><code>{html.escape(name)}</code><a class="anchor" href="#{html.escape(name)}">#</a></h3>'
    sig = (
        f'<pre class="sig">{html.escape(name + _sig(obj))}</pre>'
        if kind != 'value'
        else f'<pre class="sig">{html.escape(name)} = {html.escape(repr(obj)[:300])}</pre>'
    )
    out = [
        f'<div class="api">{head}<span class="kind">{kind}</span>{sig}',
        _md_html(doc) if doc else '',
        _params(obj) if kind != 'value' else '',
    ]
    if kind == 'class':
        for mn, m in vars(obj).items():  # its own methods and properties, not inherited ones (pydantic's, pandas')
            if isinstance(m, (staticmethod, classmethod)):
                m = m.__func__
            if mn.startswith('_') or not (inspect.isfunction(m) or isinstance(m, property)) or not getattr(m, '__doc__', None):
                continue
            out.append(
                f'<h4 id="{html.escape(name)}.{html.escape(mn)}"><code>{html.escape(name)}.{html.escape(mn)}</code></h4>'
                f'<pre class="sig">{html.escape(mn + (_sig(m) if not isinstance(m, property) else ""))}</pre>{_md_html(inspect.getdoc(m) or "")}'
            )
    out.append('</div>')
    return ''.join(out)


def public_names(modname: str) -> list[str]:
    mod = importlib.import_module(modname)
    return list(getattr(mod, '__all__', []))


# --- build -----------------------------------------------------------------------------------------------------------


def build(out: str | Path, quiet: bool = False, highlight: bool = False) -> Path:
    "Build the site into `out` (replaced); returns its index page."
    t0 = time.time()
    out = Path(out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    (out / 'style.css').write_text(CSS, encoding='utf-8')
    site = Site(out)
    chapters = sorted(p for p in NBS.glob('*.ipynb') if p.stem != 'index')
    tutorials = sorted((NBS / 'tutorials').glob('*.ipynb'))
    mods = modules()
    mod_of_nb = {p.stem: nb_module(p) for p in chapters}
    site.add('Start', 'architecture.html', 'Architecture: layout and stage contract')
    site.add('Start', 'api/index.html', 'Module index')
    for p in chapters:
        site.add('Chapters', f'chapters/{p.stem}.html', nb_title(p)[0])
    for p in tutorials:
        site.add('Tutorials', f'tutorials/{p.stem}.html', nb_title(p)[0])
    for m in mods:
        site.add('API reference', f'api/{m}.html', m)
    names = {}
    for m in mods:
        for n in public_names(m):
            names.setdefault(n, f'api/{m}.html#{n}')
    # chapters, tutorials, index
    for p, rel in (
        [(NBS / 'index.ipynb', 'index.html')]
        + [(p, f'chapters/{p.stem}.html') for p in chapters]
        + [(p, f'tutorials/{p.stem}.html') for p in tutorials]
    ):
        body = render_notebook(p, highlight)
        mod = mod_of_nb.get(p.stem) if rel.startswith('chapters/') else None
        if mod:
            body = (
                f'<p class="kind">module <a href="../api/synthbench.{mod}.html"><code>synthbench.{mod}</code></a> · source <code>nbs/{p.name}</code></p>'
                + body
            )
        site.write(rel, nb_title(p)[0], _fix_nb_links(body, rel, names, p))
    # architecture page
    arch = Path(__file__).parent / 'architecture.md'
    site.write(
        'architecture.html', 'Architecture', _fix_nb_links(_md_html(arch.read_text(encoding='utf-8')), 'architecture.html', names, arch)
    )
    # module index and API pages
    nb_of_mod = {v: k for k, v in mod_of_nb.items() if v}
    rows = []
    for m in mods:
        mod = importlib.import_module(m)
        short = m.split('.', 1)[1]  # `stages.dedup`: the chapter's `default_exp`
        docs = (mod.__doc__ or '').strip().splitlines()[-1]  # nbdev's `Docs: SITE_URL<name>.html.md` (named after the notebook)
        md_name = (
            docs[len('Docs: ' + SITE_URL) : -len('.html.md')]
            if docs.startswith('Docs: ' + SITE_URL) and docs.endswith('.html.md')
            else short
        )
        summary = (inspect.getdoc(mod) or '').split('\n')[0]
        nb = nb_of_mod.get(short)
        rows.append(
            f'<tr><td><a href="{m}.html"><code>{m}</code></a></td><td>{html.escape(summary)}</td>'
            f'<td>{f"<a href=../chapters/{nb}.html>{nb}</a>" if nb else ""}</td><td>{len(public_names(m))}</td></tr>'
        )
        ents = [api_entry(mod, n) for n in public_names(m)]
        toc = ' · '.join(f'<a href="#{html.escape(n)}"><code>{html.escape(n)}</code></a>' for n in public_names(m))
        chap = f' · chapter <a href="../chapters/{nb}.html">{nb}</a>' if nb else ''
        md = [f'# {m}', '', inspect.getdoc(mod) or '', '']  # `<module>.html.md`: the page each module docstring's `Docs:` URL names
        for n in public_names(m):
            o = getattr(mod, n)
            md += [
                f'## {n}',
                '',
                f'```python\n{n}{_sig(o) if callable(o) else " = " + repr(o)[:300]}\n```',
                '',
                (inspect.getdoc(o) or '') if inspect.isfunction(o) or (inspect.isclass(o) and vars(o).get('__doc__')) else '',
                '',
            ]
        (out / f'{md_name}.html.md').write_text('\n'.join(md), encoding='utf-8')
        site.write(f'api/{m}.html', m, f'<h1 id="{m}"><code>{m}</code></h1><p>{html.escape(summary)}{chap}</p><p>{toc}</p>' + ''.join(ents))
    site.write(
        'api/index.html',
        'Module index',
        '<h1 id="module-index">Module index</h1><table><tr><th>module</th><th>what it does</th>'
        '<th>chapter</th><th>public names</th></tr>' + ''.join(rows) + '</table>',
    )
    shutil.copy(NBS / 'llms.txt', out / 'llms.txt')
    if not quiet:
        print(f'built {sum(1 for _ in out.rglob("*.html"))} pages into {out} in {time.time() - t0:.1f}s')
    return out / 'index.html'


# --- link checker ----------------------------------------------------------------------------------------------------


class _Links(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for k in ('id', 'name') if tag in ('a',) else ('id',):
            if a.get(k):
                self.ids.add(a[k])
        for k in ('href', 'src'):
            if a.get(k) is not None and not (tag == 'link' and a.get('rel') == 'preconnect'):
                self.links.append((tag, k, a[k], self.getpos()[0]))


def check_links(site: str | Path) -> list[str]:
    "Every broken link of the built site as 'page:line: link (why)': internal files and #anchors must exist; external URLs are only syntax-checked."
    site = Path(site).resolve()
    pages, bad = {}, []
    for p in site.rglob('*.html'):
        lp = _Links()
        lp.feed(p.read_text(encoding='utf-8'))
        pages[p] = lp
    for p, lp in pages.items():
        rel = p.relative_to(site)
        for tag, attr, link, line in lp.links:
            u = urlsplit(link.strip())
            if u.scheme in ('http', 'https'):
                if not u.netloc or ' ' in link.strip() or '.' not in u.netloc.split(':')[0] and u.netloc.split(':')[0] != 'localhost':
                    bad.append(f'{rel}:{line}: {link} (malformed URL)')
                continue
            if u.scheme in ('mailto', 'data', 'javascript', 'tel'):
                continue
            if u.scheme:
                bad.append(f'{rel}:{line}: {link} (unknown scheme {u.scheme!r})')
                continue
            target = p if not u.path else (p.parent / unquote(u.path)).resolve()
            if target.is_dir():
                target = target / 'index.html'
            if not target.exists():
                bad.append(f'{rel}:{line}: {link} (no such file)')
                continue
            if not target.is_relative_to(site):
                bad.append(f'{rel}:{line}: {link} (outside the site)')
                continue
            if u.fragment and target.suffix == '.html':
                ids = pages[target].ids if target in pages else set()
                if unquote(u.fragment) not in ids:
                    bad.append(f'{rel}:{line}: {link} (no anchor #{u.fragment} in {target.relative_to(site)})')
    return sorted(bad)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('out', help='folder to build the site into (replaced)')
    ap.add_argument('--no-check', action='store_true', help='skip the link check')
    ap.add_argument('--highlight', action='store_true', help='colour the code cells (pygments; makes the build several times slower)')
    a = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    build(a.out, highlight=a.highlight)
    if a.no_check:
        return 0
    bad = check_links(a.out)
    for b in bad:
        print(f'broken link: {b}', file=sys.stderr)
    print(f'link check: {len(bad)} broken link(s)')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
