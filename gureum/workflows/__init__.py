"""Multi-host workflows (resize, migrate, live-migrate, evacuate), persisted and resumable."""
