"""Analytics: summaries, attribution, ROI, experiments and the HTML reports."""
