"""The dashboard's own helpers, pure and tested, with no Streamlit here: launching and
stopping trainer processes (launcher), what the monitor and the runs table show (monitor),
what each evaluation number is (evaluation), text for people (formatting), the Plotly
figures (figure_style, curve_axes, live_curves, usage_figures, error_curves,
confusion_figures), the error gallery (gallery) and two runs compared image by image
(comparison)."""
