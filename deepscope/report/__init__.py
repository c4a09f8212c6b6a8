"""Report building: plots (matplotlib only here), tables and self-contained HTML pages."""

from deepscope.report.html import HtmlReport, Section
from deepscope.report.tables import markdown_table

__all__ = ["HtmlReport", "Section", "markdown_table"]
