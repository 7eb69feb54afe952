"""Data files shipped with the package (a package so that wheels include them)."""
