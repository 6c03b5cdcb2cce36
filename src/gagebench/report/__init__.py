"""What a finished run shows: the HTML report (``html``), figures (``plots``,
``plots_uncertainty``) and gage-by-gage model comparisons (``comparison``).
"""
