local actions = {}
actions["rotate"] = {["disabled"] = (obj.spec == nil or obj.spec.rotation == nil)}
return actions
