"""Rendering the live report (`selector.live_report.LiveReport`): terminal tables, JSON,
PNG plots and one self-contained HTML page (`stream.report.render`)."""

from stream.report.render import format_tables, render_html, to_json, write_html, write_plots

__all__ = ["format_tables", "render_html", "to_json", "write_html", "write_plots"]
