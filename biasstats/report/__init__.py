"""Report stage: render an already-computed analysis (:func:`biasstats.report.analysis.render`:
figures, tables, the page) and the index of many (:func:`biasstats.report.page.render_index`).
Running analyses is :mod:`biasstats.run`'s job."""
