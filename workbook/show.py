"""Tables and summaries shown in notebooks (Markdown, so they read well on a git host too)."""

from IPython.display import Markdown, display


def markdown_table(headers, rows):
    """A Markdown table as text."""
    def cells(row):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |"
    return "\n".join([cells(headers), cells(["---"] * len(headers))] + [cells(r) for r in rows])


def table(headers, rows):
    """Display a table in the notebook."""
    display(Markdown(markdown_table(headers, rows)))


def summary(owner, figures):
    """Display what this notebook measured; `make run` copies it into build/report.md."""
    rows = [(k, v) for k, v in figures.items()]
    display(Markdown(markdown_table(["measured in this run", "value"], rows)),
            metadata={"workbook": {"owner": owner, "figures": [[k, str(v)] for k, v in figures.items()]}})
