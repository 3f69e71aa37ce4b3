"""Gridded fields (time, y, x): reading NetCDF with xarray, the 3-D causal net, its
training, evaluation, figures and NetCDF forecasts.

``reading`` (CF axes, checks, dask chunks) -> ``data`` (splits, scaler, windows) ->
``net`` / ``module`` -> ``train`` -> ``evaluation``, ``baselines``, ``audit`` ->
``report``, ``figures``; ``point`` (one grid point's series) and ``predict`` (CF
NetCDF forecasts).
"""
