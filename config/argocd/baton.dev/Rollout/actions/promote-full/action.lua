-- `baton rollout promote-full`: the request is an annotation whose new value (a time) the controller
-- acts on once. The time alone could repeat a request made in the same second; with the
-- resourceVersion it read, every request is new.
local os = require("os") -- Argo CD loads its sandboxed os library on require
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["baton.dev/promote-full"] = os.date("!%Y-%m-%dT%H:%M:%SZ") .. " rv " .. tostring(obj.metadata.resourceVersion)
return obj
