"""Validate CycloneDX 1.5 JSON SBOMs: the schema (strict), and every purl."""

import json
import sys

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL


def main(paths: list[str]) -> int:
    validator = JsonStrictValidator(SchemaVersion.V1_5)
    bad = 0
    for path in paths:
        with open(path) as f:
            text = f.read()
        errors = validator.validate_str(text)
        if errors:
            print(f"{path}: not valid CycloneDX 1.5: {errors}")
            bad += 1
            continue
        components = json.loads(text).get("components", [])
        for c in components:
            if "purl" in c:
                try:
                    PackageURL.from_string(c["purl"])
                except ValueError as e:
                    print(f"{path}: component {c['name']}: bad purl {c['purl']!r}: {e}")
                    bad += 1
        print(f"{path}: valid CycloneDX 1.5 ({len(components)} components)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
