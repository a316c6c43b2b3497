"""
Facts about LVM on a host: its volume groups, logical volumes and physical volumes,
from the JSON reports of ``vgs``, ``lvs`` and ``pvs``, with every size in bytes.
"""

from __future__ import annotations

import json

from pyinfra.api import FactBase
from pyinfra.api.exceptions import FactProcessError
from typing_extensions import override

_REPORT_OPTIONS = "--reportformat json --units b --nosuffix"


def _report_rows(output: list[str], kind: str) -> list[dict]:
    """The rows of every ``kind`` ("vg", "lv", "pv") section of an LVM JSON report."""
    if not "".join(output).strip():
        return []
    try:
        report = json.loads("\n".join(output))
        rows = [row for section in report["report"] for row in section[kind]]
    except (ValueError, KeyError, TypeError) as error:
        raise FactProcessError(f"not an LVM JSON report of {kind}s: {error!r}") from error
    if not all(isinstance(row, dict) for row in rows):
        raise FactProcessError(f"not an LVM JSON report of {kind}s: {rows}")
    return rows


def _text(row: dict, field: str) -> str:
    value = row.get(field)
    if not isinstance(value, str):
        raise FactProcessError(f"LVM report row lacks {field}: {row}")
    return value


def _bytes(row: dict, field: str) -> int:
    try:
        return int(row[field])
    except (KeyError, TypeError, ValueError) as error:
        raise FactProcessError(f"LVM report field {field} is not a byte count: {row}") from error


class LvmVolumeGroups(FactBase[dict]):
    """
    The volume groups, sizes in bytes.

    .. code:: python

        {
            "vg0": {
                "size": 17175674880, "free": 15028191232,
                "extent_size": 4194304, "extent_count": 4095, "free_count": 3583,
            },
        }

    Sample output::

          {
              "report": [
                  {
                      "vg": [
                          {"vg_name":"vg0", "vg_size":"17175674880", "vg_free":"15028191232",
                           "vg_extent_size":"4194304", "vg_extent_count":"4095",
                           "vg_free_count":"3583"}
                      ]
                  }
              ]
          }
    """

    default = dict

    @override
    def requires_command(self) -> str:
        return "vgs"

    @override
    def command(self) -> str:
        return (
            f"vgs {_REPORT_OPTIONS} -o "
            "vg_name,vg_size,vg_free,vg_extent_size,vg_extent_count,vg_free_count"
        )

    @override
    def process(self, output: list[str]) -> dict:
        return {
            _text(row, "vg_name"): {
                "size": _bytes(row, "vg_size"),
                "free": _bytes(row, "vg_free"),
                "extent_size": _bytes(row, "vg_extent_size"),
                "extent_count": _bytes(row, "vg_extent_count"),
                "free_count": _bytes(row, "vg_free_count"),
            }
            for row in _report_rows(output, "vg")
        }


class LvmLogicalVolumes(FactBase[dict]):
    """
    The logical volumes by ``vg/lv``, sizes in bytes. ``active`` and ``open`` come from
    the state and device-open characters of ``lv_attr`` (the fifth and sixth).

    .. code:: python

        {
            "vg0/g1": {
                "vg": "vg0", "name": "g1", "size": 2147483648, "attr": "-wi-a-----",
                "path": "/dev/vg0/g1", "segments": 1, "active": True, "open": False,
            },
        }

    Sample output::

          {
              "report": [
                  {
                      "lv": [
                          {"vg_name":"vg0", "lv_name":"g1", "lv_size":"2147483648",
                           "lv_attr":"-wi-a-----", "lv_path":"/dev/vg0/g1", "seg_count":"1"}
                      ]
                  }
              ]
          }
    """

    default = dict

    @override
    def requires_command(self) -> str:
        return "lvs"

    @override
    def command(self) -> str:
        return f"lvs {_REPORT_OPTIONS} -o vg_name,lv_name,lv_size,lv_attr,lv_path,seg_count"

    @override
    def process(self, output: list[str]) -> dict:
        volumes: dict = {}
        for row in _report_rows(output, "lv"):
            vg, name, attr = _text(row, "vg_name"), _text(row, "lv_name"), _text(row, "lv_attr")
            if len(attr) < 6:
                raise FactProcessError(f"unexpected lv_attr in LVM report: {row}")
            volumes[f"{vg}/{name}"] = {
                "vg": vg,
                "name": name,
                "size": _bytes(row, "lv_size"),
                "attr": attr,
                "path": row.get("lv_path") or None,
                "segments": _bytes(row, "seg_count"),
                "active": attr[4] == "a",
                "open": attr[5] == "o",
            }
        return volumes


class LvmPhysicalVolumes(FactBase[dict]):
    """
    The physical volumes, sizes in bytes; ``vg`` is ``None`` for a PV in no VG.

    .. code:: python

        {"/dev/vdb": {"vg": "vg0", "size": 17175674880, "free": 15028191232,
                      "pe_start": 1048576}}

    Sample output::

          {
              "report": [
                  {
                      "pv": [
                          {"pv_name":"/dev/vdb", "vg_name":"vg0", "pv_size":"17175674880",
                           "pv_free":"15028191232", "pe_start":"1048576"}
                      ]
                  }
              ]
          }
    """

    default = dict

    @override
    def requires_command(self) -> str:
        return "pvs"

    @override
    def command(self) -> str:
        return f"pvs {_REPORT_OPTIONS} -o pv_name,vg_name,pv_size,pv_free,pe_start"

    @override
    def process(self, output: list[str]) -> dict:
        return {
            _text(row, "pv_name"): {
                "vg": row.get("vg_name") or None,
                "size": _bytes(row, "pv_size"),
                "free": _bytes(row, "pv_free"),
                "pe_start": _bytes(row, "pe_start"),
            }
            for row in _report_rows(output, "pv")
        }
