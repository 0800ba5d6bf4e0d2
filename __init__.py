"""fieldctl: operations toolkit for the messaging interfaces of lab and IoT devices.

The import package is assembled by setuptools from this folder's cli/, protocols/ and profiles/.
"""

__version__ = "0.1.0"
