"""The desktop app: widgets, panels, dialogs and item models; no ML logic (that lives in ``core``)."""
