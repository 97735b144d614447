"""Estimated monthly cost of an environment, from its rendered templates and a dated price table.

``prices.yaml`` (shipped in the package) holds the us-east-1 on-demand prices with their source pages and the
usage assumptions; ``estimate.py`` walks every resource of every stack and prices it.
"""
