"""Findings in the ecosystem's formats: CSV and JSON Lines (``tabular``), OCSF Detection Findings
(``ocsf``) and ASFF for AWS Security Hub (``asff``, published by ``securityhub``). Every format
turns one finding row (``qrie_lib.views.finding_row``) into one record, so an export streams page
by page (``stream``) and never holds the whole set."""
