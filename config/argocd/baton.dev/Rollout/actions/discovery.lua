-- The actions Argo CD offers on a baton.dev Rollout, each enabled exactly when `baton rollout`
-- would act on it (the CLI refuses the others, and the controller would ignore them): so every
-- command the status tells the user to run is offered, and a failed rollout can be retried or,
-- when it stopped without rolling back, aborted.
local actions = {}
local status = obj.status or {}
local generation = obj.metadata.generation
local paused = obj.spec ~= nil and obj.spec.paused == true

-- The condition of type `type`, when it describes the current generation.
local function condition(type)
  for _, c in ipairs(status.conditions or {}) do
    if c.type == type and (c.observedGeneration == nil or c.observedGeneration == generation) then
      return c
    end
  end
  return nil
end

-- While the spec is invalid the controller changes nothing, and acts on no request.
local invalid = condition("InvalidSpec")
local valid = invalid == nil or invalid.status ~= "True"
local progressing = condition("Progressing")
local atPause = progressing ~= nil and progressing.reason == "BatchPaused"
-- A rollout away from the last healthy revision, and its failure, if it failed.
local rolling = status.currentRevision ~= nil and status.currentRevision ~= status.updateRevision
local failed = status.failedUpdate
if failed ~= nil and failed.revision ~= status.updateRevision then
  failed = nil
end
local inProgress = rolling and failed == nil

actions["promote"] = {["disabled"] = not (valid and not paused and atPause)}
actions["promote-full"] = {["disabled"] = not (valid and not paused and inProgress)}
actions["abort"] = {["disabled"] = not (valid and rolling and (failed == nil or failed.rolledBack ~= true))}
actions["retry"] = {["disabled"] = not (valid and failed ~= nil)}
actions["restart"] = {["disabled"] = false}
actions["pause"] = {["disabled"] = paused}
actions["resume"] = {["disabled"] = not paused}
return actions
