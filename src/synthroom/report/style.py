"""The report's inline stylesheet (system fonts only: the page needs no network)."""

CSS = """
:root { --ink:#1f2933; --muted:#616e7c; --line:#d9e2ec; --bg:#f5f7fa; --card:#fff;
        --pass:#1e7b4a; --pass-bg:#e3f5eb; --fail:#b42318; --fail-bg:#fdecea; --info:#2f5d8a; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink); line-height:1.45;
       font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width:1120px; margin:0 auto; padding:24px 20px 60px; }
h1 { font-size:22px; margin:0 0 4px; } h2 { font-size:18px; margin:36px 0 8px; padding-bottom:4px;
     border-bottom:2px solid var(--line); } h3 { font-size:14px; margin:0 0 4px; }
p.lead, .muted { color:var(--muted); } p.lead { margin:0 0 14px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:18px 20px; }
.summary { border-width:2px; } .summary.pass { border-color:var(--pass); } .summary.fail { border-color:var(--fail); }
.verdict { display:flex; align-items:center; gap:18px; flex-wrap:wrap; margin-bottom:14px; }
.verdict .big { font-size:34px; font-weight:800; letter-spacing:.06em; padding:4px 16px; border-radius:8px; }
.pass .big { color:var(--pass); background:var(--pass-bg); }
.fail .big { color:var(--fail); background:var(--fail-bg); }
.neutral .big { color:var(--info); background:#e6eef7; }
.tiles { display:grid; grid-template-columns:repeat(auto-fill, minmax(200px, 1fr)); gap:10px; }
.tile { border:1px solid var(--line); border-radius:8px; padding:10px 12px; background:#fbfcfd; }
.tile .label { font-size:12px; color:var(--muted); text-transform:uppercase; letter-spacing:.04em; }
.tile .value { font-size:24px; font-weight:700; } .tile .sub { font-size:12px; color:var(--muted); }
.tile.fail { border-color:var(--fail); background:var(--fail-bg); } .tile.pass { border-color:#9fd3b5; }
.badge { display:inline-block; font-size:11px; font-weight:700; padding:1px 7px; border-radius:10px;
         vertical-align:middle; }
.badge.pass { color:var(--pass); background:var(--pass-bg); border:1px solid #9fd3b5; }
.badge.fail { color:#fff; background:var(--fail); }
.badge.none { color:var(--muted); background:#eef1f4; }
.advice { margin-top:14px; border-left:4px solid var(--fail); background:var(--fail-bg); padding:10px 14px;
          border-radius:6px; }
.advice h3 { color:var(--fail); } .advice ul { margin:4px 0 0 18px; padding:0; }
.notes { margin:12px 0 0 18px; padding:0; color:var(--muted); font-size:13px; }
table { border-collapse:collapse; width:100%; background:var(--card); font-size:13px; }
th, td { text-align:left; padding:5px 9px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-size:12px; color:var(--muted); text-transform:uppercase; letter-spacing:.03em; background:#f9fafb; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
tr.fail td { background:var(--fail-bg); } tr.total td { font-weight:700; border-top:2px solid var(--line); }
.grid2 { display:grid; grid-template-columns:repeat(auto-fill, minmax(470px, 1fr)); gap:12px; }
.grid3 { display:flex; flex-wrap:wrap; gap:16px; align-items:flex-start; }
.chart h3 { display:flex; justify-content:space-between; gap:8px; }
.chart h3 .kl { font-weight:400; color:var(--muted); font-size:12px; }
.key { display:flex; gap:16px; flex-wrap:wrap; font-size:12px; color:var(--muted); margin:6px 0 10px; }
.swatch { display:inline-block; width:11px; height:11px; border-radius:2px; margin-right:5px; vertical-align:-1px; }
.swatch.tick { height:3px; vertical-align:3px; }
svg { display:block; max-width:100%; height:auto; overflow:visible; }
svg .grid { stroke:#e4e7eb; stroke-width:1; } svg .axis { stroke:#7b8794; stroke-width:1; }
svg .tick { fill:#52606d; } svg .cell { stroke:#fff; stroke-width:1; }
svg text.light { fill:#fff; } svg text.dark { fill:#1f2933; }
details > summary { cursor:pointer; color:var(--info); margin:8px 0; }
code { background:#eef1f4; padding:1px 4px; border-radius:4px; font-size:12px; }
footer { margin-top:40px; font-size:12px; color:var(--muted); }
@media print { body { background:#fff; } .card { break-inside:avoid; } details { display:block; } }
"""
