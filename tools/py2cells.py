"""Carry edits made to exported modules (e.g. `ruff check --fix`, `ruff format`) back into the notebook cells they came from.

nbdev-export writes each exported cell after a `# %% ../nbs/NB.ipynb #CELLID` line. This tool reads those blocks from
`synthbench/*.py`, and where a block's code differs from its cell's source (without the `#|` directive lines), it replaces the
cell's code and keeps the directives. Run `nbdev-export` afterwards: the modules must come out unchanged.

    python tools/py2cells.py [synthbench/x.py ...]     # default: every module
"""

import json, re, sys
from pathlib import Path

MARK = re.compile(r'^# %% ((?:\.\./)+nbs/\S+\.ipynb) #(\w+)\s*$')


def blocks(py: Path) -> list[tuple[str, str, str]]:
    "(notebook path, cell id, code) for each exported block of `py`."
    out, cur, buf = [], None, []
    for line in py.read_text().split('\n'):
        m = MARK.match(line)
        if m or line.startswith('# %% auto'):
            if cur:
                out.append((*cur, '\n'.join(buf)))
            cur, buf = ((m.group(1), m.group(2)) if m else None), []
        elif cur is not None:
            buf.append(line)
    if cur:
        out.append((*cur, '\n'.join(buf)))
    return out


def split_directives(src: str) -> tuple[list[str], str]:
    lines = src.split('\n')
    i = 0
    while i < len(lines) and (lines[i].startswith('#|') or not lines[i].strip()):
        i += 1
    return lines[:i], '\n'.join(lines[i:])


def absolute(code: str, pkg: str = 'synthbench') -> str:
    "nbdev writes `from synthbench.x import` as a relative import (`from .x`, `from ..run.stage`); notebooks keep the absolute form. `pkg`: the module's package."

    def fix(m):
        dots, rest = m.group(2), m.group(3) or ''
        base = pkg.split('.')[: len(pkg.split('.')) - (len(dots) - 1)]
        return f"{m.group(1)}from {'.'.join(base + ([rest] if rest else []))} import"

    return re.sub(r'^(\s*)from (\.+)([\w.]+)? import', fix, code, flags=re.M)


def main(paths: list[str]) -> int:
    root = Path(__file__).resolve().parent.parent
    pys = [Path(p) for p in paths] or sorted(p for p in (root / 'synthbench').rglob('*.py') if p.name not in ('__init__.py', '_modidx.py'))
    changed = 0
    for py in pys:
        by_nb: dict[str, dict[str, str]] = {}
        pkg = '.'.join(py.resolve().relative_to(root).parent.parts)
        for nbrel, cid, code in blocks(py):
            by_nb.setdefault(nbrel, {})[cid] = absolute(code, pkg).strip('\n')
        for nbrel, cells in by_nb.items():
            nbp = (py.parent / nbrel).resolve()
            nb = json.loads(nbp.read_text())
            dirty = False
            for c in nb['cells']:
                if c.get('id') not in cells or c['cell_type'] != 'code':
                    continue
                src = ''.join(c['source']) if isinstance(c['source'], list) else c['source']
                dirs, body = split_directives(src)
                new = cells[c['id']]
                if body.strip('\n') == new:
                    continue
                text = '\n'.join([d for d in dirs if d.strip()] + [new])
                c['source'] = [l + '\n' for l in text.split('\n')]
                c['source'][-1] = c['source'][-1][:-1]
                dirty = True
                changed += 1
            if dirty:
                nbp.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
    print(f'{changed} cell(s) updated from the exported modules')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
