"""Reports built from the participant output files (DESIGN.md §7).

Public API (import from the submodules; nothing heavy is imported here):

- :func:`bidsmrs.report.participant.write_participant_report` /
  :func:`~bidsmrs.report.participant.safe_write_participant_report` → ``sub-<label>.html``
- :func:`bidsmrs.report.participant.safe_write_dataset_logs` → ``logs/CITATION.md``,
  ``logs/MRSinMRS.md``
- :func:`bidsmrs.report.group.write_group_report` → ``group.html``
- :func:`bidsmrs.report.methods.methods_text`, :func:`~bidsmrs.report.methods.write_citation`
- :func:`bidsmrs.report.mrsinmrs.checklist`, :func:`~bidsmrs.report.mrsinmrs.write_mrsinmrs`
- :mod:`bidsmrs.report.figures`: SVG figure functions
"""
