"""The pyleak test extension, built the ordinary way:

    python3 setup.py build_ext --build-lib DIR
"""
from setuptools import Extension, setup

setup(name="pyleak", version="1.0",
      ext_modules=[Extension("pyleak", ["pyleak.c"])])
