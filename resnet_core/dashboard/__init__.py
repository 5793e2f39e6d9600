"""The dashboard's own helpers, pure and tested, with no Streamlit here (the pages import
them; they import the core and the run format, never the pages): the Train form as data
(form) and the trainer and sweep processes (launcher); the runs table (runs_table), a run's
shown state (run_state), the Monitor's words (monitor_text) and its server-wide metrics
cache (metrics_cache); the Plotly figures (figure_style, curve_axes, live_curves,
usage_figures, error_curves, confusion_figures, explain_figures, heatmap); the error gallery
(cell_selection, gallery_records, gallery_cards, run_images); and the views behind the
Explain, Compare, Predict and Home pages (history, calibration, label_errors, comparison,
uploads, downloads, links, experiments, series)."""
