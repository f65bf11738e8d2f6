-- `baton rollout restart`: the controller stamps this time into the pod template, a new
-- revision rolled out in the normal batches.
local os = require("os") -- Argo CD loads its sandboxed os library on require
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
local now = os.date("!%Y-%m-%dT%H:%M:%SZ")
obj.metadata.annotations["baton.dev/restartedAt"] = now
obj.metadata.annotations["kubernetes.io/change-cause"] = "Argo CD: restart"
return obj
