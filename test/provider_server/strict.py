"""
OpenAI's strict structured-output rules: the first rule a json_schema with
strict:true breaks, with the message the real API gives.
"""


def strict_schema_problem(schema):
    """First strict-mode rule the json_schema breaks: (short violation, real API message)."""
    if not isinstance(schema, dict):
        return "schema missing", "schema must be a JSON Schema of 'type: \"object\"', got 'type: \"None\"'."
    rtype = schema.get("type")
    if rtype != "object":
        return ("root is not an object",
                f"schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{rtype}\"'.")
    return _strict_walk(schema, ())


def _strict_walk(schema, ctx):
    if not isinstance(schema, dict):
        return None
    t = schema.get("type")
    is_object = t == "object" or (isinstance(t, list) and "object" in t)
    if is_object:
        if schema.get("additionalProperties") is not False:
            return ("additionalProperties:false missing",
                    f"In context={ctx!r}, 'additionalProperties' is required to be supplied "
                    "and to be false.")
        props = schema.get("properties") or {}
        required = schema.get("required") or []
        missing = [k for k in props if k not in required]
        if missing:
            return (f"property {missing[0]!r} not in required",
                    f"In context={ctx!r}, 'required' is required to be supplied and to be an "
                    f"array including every key in properties. Missing '{missing[0]}'.")
        for name, sub in props.items():
            found = _strict_walk(sub, ctx + ("properties", name))
            if found:
                return found
    if isinstance(schema.get("items"), dict):
        found = _strict_walk(schema["items"], ctx + ("items",))
        if found:
            return found
    for key in ("anyOf", "$defs", "definitions"):
        sub = schema.get(key)
        entries = sub.items() if isinstance(sub, dict) else enumerate(sub or [])
        for name, s in entries:
            found = _strict_walk(s, ctx + (key, name))
            if found:
                return found
    return None
