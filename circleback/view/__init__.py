"""Views of a chain of pipelines for people: the data a view needs, and an HTML page.

``chain`` turns the tree that ``circleback.relay.trace`` found into what a person wants
to see (durations, failed jobs first, holds and who released them); ``html`` draws it
as one self-contained page.
"""
