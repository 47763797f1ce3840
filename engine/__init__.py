"""Conv3D Lab engine: everything that is not drawing. Never imports streamlit."""

__version__ = "0.1.0"
