"""`fmgrade report`: what a class got right and wrong, from a batch of results.

load.py reads `fmgrade grade --format json` files, gradebook.py an nbgrader gradebook; both
give Submissions that stats.py counts. tables.py writes the CSV files, plots.py the SVG plots,
page.py the self-contained report.html, and build.py ties them together for the command.
"""
