"""The ratios the issues promised, computed from one run's results (never typed in)."""
from __future__ import annotations

from mpgpack.bench.report import _get, _noun  # lookup helper; what one input row is called


def ratios(results: dict) -> dict:
    out = {}
    lat = results.get("latency", {})
    sk = _get(lat, "sklearn", "batches", "1", "median_us")
    for name in ("onnxruntime", "litert", "numpy_floor"):
        t = _get(lat, name, "batches", "1", "median_us")
        if sk and t:
            out[f"single-row latency: {name} vs sklearn"] = {
                "value": sk / t, "text": f"{t:.1f} µs vs {sk:.1f} µs: {sk / t:.0f}× faster"}
    servers = _get(results, "service", "servers") or {}
    api, base = servers.get("mpgpack API"), servers.get("Flask + sklearn baseline")
    if api and base:
        for conc in sorted(set(api) & set(base), key=int):
            a, b = api[conc]["requests_per_s"], base[conc]["requests_per_s"]
            out[f"API throughput vs baseline, single {_noun(results)}, {conc} client{'s' if conc != '1' else ''}"] = {
                "value": a / b, "text": f"{a:,.0f} vs {b:,.0f} req/s: {a / b:.1f}×"}
    out.update(_vs_best_peer(_get(results, "service", "peers")))
    cold = results.get("cold_start", {})
    edge, tf = cold.get("edge runner (LiteRT)"), cold.get("edge runner (full TensorFlow)")
    if edge and tf:
        out["edge cold start: LiteRT vs full TensorFlow"] = {
            "value": tf["first_output_s"] / edge["first_output_s"],
            "text": f"{edge['first_output_s']:.3f} s vs {tf['first_output_s']:.3f} s: "
                    f"{tf['first_output_s'] / edge['first_output_s']:.1f}× faster"}
        out["edge peak RSS: LiteRT vs full TensorFlow"] = {
            "value": tf["peak_rss_mb"] / edge["peak_rss_mb"],
            "text": f"{edge['peak_rss_mb']:.0f} MB vs {tf['peak_rss_mb']:.0f} MB: "
                    f"{tf['peak_rss_mb'] / edge['peak_rss_mb']:.1f}× smaller"}
    return out


def _vs_best_peer(peers: dict | None) -> dict:
    """mpgpack's endpoints against the fastest peer at the same point, never the weakest."""
    from mpgpack.bench.peer_load import best_peer
    out: dict = {}
    for label, points in ((peers or {}).get("endpoints") or {}).items():
        if not label.startswith("mpgpack"):
            continue
        for point, r in points.items():
            best = best_peer(peers, point)
            if best is None:
                continue
            name, b = best
            cars, conc = point.split("x")
            a_rps, b_rps = r["requests_per_s"], b["requests_per_s"]
            out[f"{label} vs best peer, {cars} car{'s' if cars != '1' else ''}/request, {conc} "
                f"client{'s' if conc != '1' else ''}"] = {
                "value": a_rps / b_rps, "best_peer": name,
                "text": f"{a_rps:,.0f} vs {b_rps:,.0f} req/s ({name}): {a_rps / b_rps:.1f}×"}
    return out
