## Graft's page in English. Every message here has its twin in ../zh-CN/graft.ftl
## (a test fails when one is missing).

page-title = Graft: transfer learning in your browser
tagline = Transfer learning in your browser. Nothing leaves this machine.
language-label = Language

## Model status and backend
backend-label = Compute on
backend-auto = Automatic (a hardware GPU, else the CPU)
backend-cpu = CPU (WebAssembly)
backend-webgpu = WebGPU (any adapter)
backend-starting = starting…
backend-title = Where the model computes
model-loading = Loading the model…
model-ready-in = ready in { $seconds } s
model-none = no model

## Project bar
project-label = Project
project-option = { $name } ({ $samples ->
    [one] { $samples } image
   *[other] { $samples } images
})
project-name = Name
project-new = New
project-delete = Delete
project-delete-confirm = Delete the project "{ $name }" with all its images and its model? This cannot be undone.
project-export = Export project
project-import = Import project
model-export = Export model
model-export-title = The trained model as one .safetensors file (graft predict --model runs it)
storage-used = Saved in this browser: { $used } of { $quota }
storage-saved = Saved in this browser
storage-opening = Opening the last project…

## Embedding pool
pool-summary = { $workers ->
    [one] Embedding on 1 worker
   *[other] Embedding on { $workers } workers in parallel
} ({ $cores } cores{ $details })
pool-memory = , { $megabytes } MB
pool-loading = , { $loading } loading the model
pool-title = New samples are decoded and embedded by this many Web Workers, each with its own copy of the model
pool-workers = Workers
pool-auto = one per core

## Training
train-heading = Train
setting-epochs = Epochs
setting-batch = Batch size
setting-lr = Learning rate
setting-hidden = Hidden units (0 = linear)
setting-val-fraction = Validation fraction
setting-seed = Seed
setting-adapt-weight = Strength
adapt-label = Adapt to the new domain
adapt-explain = Domain adaptation (DANN) trains the features so that a second classifier cannot tell your labelled images from the { $target } unlabelled ones of the new domain, while the labels are still learned: what the model learns then applies where it will be used.
adapt-hint = With unfrozen blocks, adapt gently: at strength 1 the reversed gradient pulled the blocks away from the labels in our measurements, while { $gentle } raised accuracy on the new domain by 5 points (README).
train-button = Train
stop-button = Stop
status-label = Status:
status-training = training
status-embedding = embedding
status-idle = idle
status-done = done
status-error = error
stage-label = Stage:
stage-preparing = preparing
stage-head = head
stage-fine-tune = fine-tune
preparing-images = Preparing images { $prepared }/{ $total }

## Which parts learn (fine-tuning)
freeze-heading = Which parts learn
freeze-explain = The backbone is a chain of blocks, from edges and textures (left) to whole objects (right). Feature extraction trains only the head on the frozen backbone's features: the right start with little data, quick and safe. Fine-tuning also lets the last blocks adapt to your images, gently, at a small learning rate; start with one or two blocks, and unfreeze more only with more images. Only the last blocks can train: each block builds on the one before, so the blocks after a trainable one must learn too.
blocks-label = backbone blocks
block-title = { $name }: output { $shape }, { $parameters } parameters
head-chip = head
setting-unfreeze = Blocks to unfreeze (0 = head only)
setting-head-epochs = Head-only epochs first
setting-backbone-lr = Backbone learning rate
setting-bn = Batch norm in unfrozen blocks
bn-frozen = pretrained statistics
bn-train = batch statistics
setting-cosine = Cosine decay of the learning rates
trainable-label = Trainable parameters:
trainable-split = ({ $parameters } in { $blocks ->
    [one] 1 unfrozen block
   *[other] { $blocks } unfrozen blocks
}, the rest in the head)
trainable-head = (the head only)
schedule-explain = The head learns alone for { $epochs ->
    [one] 1 epoch
   *[other] { $epochs } epochs
}, then the last { $blocks ->
    [one] block joins
   *[other] { $blocks } blocks join
} at learning rate { $lr }.
bn-frozen-explain = Batch norm keeps the statistics it learned on ImageNet (right for small batches).
bn-train-explain = Batch norm normalises with each batch's statistics and updates its running ones.
finetune-advice = { $blocks } blocks ({ $parameters } parameters) on { $samples } images: with this little data, unfreezing much makes the backbone forget what it knew without learning your task. Start with 1 or 2 blocks, or add images.
augment-label = Augment training images (random crop, flip, colour jitter)
augment-strength = Strength (0–1)
augment-preview = Preview
augment-alt = an augmented training image

## Classes
class-name-label = Class name
class-delete = Delete this class
class-delete-named = Delete the class { $name }
class-delete-confirm = Delete "{ $name }" and its { $count } samples?
target-explain = Images of where the model will be used, without labels (for domain adaptation).
samples-unit = { $count ->
    [one] sample
   *[other] samples
}
samples-embedding = { " " }· embedding { $pending }…
sample-remove = Remove this sample
record-title = Hold to record webcam frames
record-needs-camera = Turn the camera on first
record-label = { $action } ({ $name })
recording = ● Recording…
record-hold = Hold to record
upload-images = Upload images
upload-label = Upload images to { $name }

## Webcam
webcam-label = Webcam
webcam-video = Webcam preview
camera-on = Turn camera on
camera-off = Turn camera off
camera-label = Camera
fps-label = Frames per second while recording
live-start = Predict live from the camera
live-stop = Stop live prediction
record-hint = Hold a class's Record button (mouse, touch, or Space) to capture frames into it.

## Prediction
predict-heading = Predict
predict-stale = Model is stale: the classes changed since it was trained.
predict-upload = Upload an image to classify
predict-train-first = Train first, then upload an image
predict-webcam-rate = webcam · { $fps } frames per second
predict-file-time = { $file } · { $millis } ms

## What the pretrained model sees
smoke-summary = What does the pretrained model see? (ImageNet top 5)
top5-heading = ImageNet top 5 for
top5-time = { $millis } ms in the worker
drop-hint = Drop a photo here, or click to choose one
drop-formats = JPEG, PNG, WebP or GIF · it never leaves this computer
classifying = Classifying…

## How it learns (metrics)
metrics-heading = How it learns
val-accuracy-label = Validation accuracy:
progress-numbers = { " " }· epoch { $done }/{ $planned } · { $rate } samples/s · elapsed { $elapsed } · ETA { $eta }
trained-on = { " " }· trained on{ " " }
seconds = { $seconds } s
cache-size = { $what ->
    [activations] Cached activations entering the unfrozen blocks
   *[features] Cached features
}: { $megabytes } MB{ $views ->
    [0] {""}
    [one] , with 1 augmented view per image
   *[other] , with { $views } augmented views per image
}
overfit-hint = Validation loss has risen for { $epochs } epochs while training loss fell: the model is starting to memorise its training images (overfitting). The best weights so far are kept; more images, augmentation or fewer epochs would help{ $unfrozen ->
    [0] .
   *[other] , and so would fewer unfrozen blocks.
}
metrics-stale = The data changed since training: train again to use it.
chart-loss = Loss
chart-cross-entropy = cross-entropy
chart-accuracy = Accuracy
chart-accuracy-axis = accuracy
chart-domains = Telling the domains apart
chart-epochs = epoch (1–{ $epochs })
chart-fine-tuning = fine-tuning
chart-summary = { $epochs ->
    [one] After 1 epoch:
   *[other] After { $epochs } epochs:
}
chart-series-summary = { $name } went from { $first } to { $last } (lowest { $low }, highest { $high }).
series-train-loss = train loss
series-val-loss = validation loss
series-train-accuracy = train accuracy
series-val-accuracy = validation accuracy
series-domain = domain classifier
series-chance = chance (50%)
domain-explain = The domain classifier tells your labelled images from the new domain's { $percent }% of the time. Near 50% the features no longer tell the two domains apart, so what the model learned from your labels applies to the new images too.
kept-final = Final epoch { $epoch } kept (domain adaptation: the new domain's images have no labels to pick an epoch by, and the best validation loss tends to come before the adaptation took hold)
kept-best = Best epoch { $epoch } of { $epochs } kept (lowest validation loss)
confusion-heading = { $kept } · scored on { $samples } validation samples
confusion-heading-epoch = Epoch { $epoch } · validation
confusion-caption = Confusion matrix: rows are the true class, columns the prediction
confusion-accuracy = accuracy
confusion-right = { $right } of { $total } validation images are classified right.
confusion-worst = The most frequent mistake: { $count ->
    [one] 1 image
   *[other] { $count } images
} of { $truth } predicted as { $predicted }.

## Pretrained model
backbone-heading = Pretrained model
backbone-explain = The backbone turns each image into features. The closer the images it learned from are to yours, the better what it learned transfers: try another one, or ask which fits.
backbone-label = Backbone
backbone-option = { $name } · { $megabytes } MB · ImageNet top-1 { $top1 }% · { $speed }
backbone-speed = { $millis } ms per image here
backbone-speed-unknown = speed not measured yet
reembedding = Embedding your images with the new backbone: { $done } / { $total }
rank-button = Which model fits?
ranking = Scoring every backbone on your labelled images…
logme-explain = LogME (higher is better): how well a simple model on each backbone's features can explain your labels, computed without training.
backbone-score = { $name }: LogME { $logme } ({ $images } images, { $seconds } s)
backbone-suggestion = { $best } fits your images clearly better than { $current }.
backbone-switch = Switch to { $name }
backbone-no-suggestion = { $name } is as good a fit as any here.

## Check set of the new domain
check-heading = Check on the new domain (optional)
check-explain = Label a few images of the new domain here. No run trains on them: after each run the page counts how many it gets right, with adaptation and without, so you can see whether adapting helps.
check-upload-label = Add check images of { $name }
images-unit = { $count ->
    [one] image
   *[other] images
}
check-add = Add images
check-not-measured = not measured yet
check-train-to-measure = Train to measure.
check-turn-on = Turn on “Adapt to the new domain” and train again to compare.
check-turn-off = Turn off “Adapt to the new domain” and train again to compare.
check-helps = Adapting helps on these images.
check-hurts = Adapting does not help on these images.
check-same = Adapting makes no difference on these images.
check-with = Accuracy on the check images with adaptation:
check-without = { " " }· without:{ " " }

## Negative transfer
baseline-pending = Comparing with a model that learned from the raw pixels, without transfer…
baseline-comparison = Validation accuracy with { $backbone }: { $transferred }. Without transfer (the same head on the raw pixels, 32 x 32): { $baseline }.
transfer-helps = Transfer is helping: what the backbone learned from millions of images makes your model better than learning from your images alone.
transfer-warning = Transfer is not helping here: the pretrained features are not at least { $points } points better than the raw pixels (negative transfer, when they are worse).
transfer-try-backbone = Try another backbone: “Which model fits?” scores them on your images.
transfer-try-finetune = Fine-tune: unfreeze the last blocks so that the features adapt to your images.
transfer-try-data = Add more images, or cleaner ones: check that each class shows what tells it apart.

## Page messages
verbatim = { $words }
load-failed = The model could not be loaded: { $message }
backend-problem = { $problem }. Graft continues on the CPU; nothing was lost.
training-stopped = Training stopped: { $why }. The best weights (epoch { $epoch }) were kept.
check-failed = The check images could not be scored: { $message }
baseline-failed = The comparison with a model trained without transfer failed: { $message }
not-saved = Not saved: { $message }.
file-too-large = { $name } is too large ({ $size } MB; the limit is { $limit } MB)
skipped = { $count ->
    [one] 1 file skipped: { $first }
   *[other] { $count } files skipped: { $first }
}
skipped-why = Why each was skipped
add-class = + Add a class
camera-rear = Use the rear camera
camera-front = Use the front camera
camera-denied = Camera permission was denied. Allow the camera for this page in the browser's site settings, then try again.
camera-missing = No camera was found. Connect one, or upload images instead.
camera-busy = The camera is busy in another application. Close it there, then try again.
camera-failed-named = The camera could not be opened ({ $name }).
camera-failed = The camera could not be opened.
camera-unavailable = This browser offers no camera access (a secure context is needed).
class-default-name = Class { $number }
project-default-name = Project { $number }
target-name = Unlabelled: new domain

## Classroom: projector mode and the guided first run
projector-mode = Projector mode
tour-open = Show the guide
tour-heading = Two classes from the camera in a minute
tour-camera = Turn the camera on (below, under Webcam).
tour-first-class = Hold “Hold to record” on Class 1 while showing one thing to the camera: 10 frames or more.
tour-second-class = Do the same on Class 2 with something else.
tour-train = Press Train. The head alone learns on the backbone's features: that is feature extraction.
tour-live = Press “Predict live from the camera” and show either thing again.
tour-progress = Step { $step } of { $steps }
tour-finished = Done: your model tells the two apart. Rename the classes, add a third, or try fine-tuning below.
tour-skip = Skip the guide
tour-close = Close the guide

## The engine's errors (GraftError::user_message), worded here
error-io = Could not read { $path }: { $detail }
error-not-an-image = { $name } is not an image Graft can read (JPEG, PNG, WebP or GIF): { $reason }
error-image-too-large = { $name } is too large ({ $width }x{ $height } pixels); the limit is { $max_side } pixels a side
error-truncated-image = { $name } is truncated (the file ends before the image does); it was not added
error-empty-file = { $name } is empty (0 bytes)
error-bad-checkpoint = Weights file { $name } is not a valid PyTorch legacy checkpoint: { $reason }
error-truncated-weights = Weights file { $name } is truncated: { $reason }
error-checksum = Checksum mismatch for { $name }: expected sha256 { $expected }, got { $actual }
error-weights = The weights do not fit the model: { $detail }
error-manifest = The model manifest is invalid: { $detail }
error-bad-file = { $what } is not usable: { $reason }
error-bad-model-file = { $file } is not a usable Graft model: { $reason }
error-bad-project-file = { $file } is not a usable Graft project: { $reason }
error-backbone-mismatch = These features were made by backbone { $found }, but the loaded backbone is { $expected }
error-training = Cannot train: { $detail }
error-diverged = training diverged in epoch { $epoch } (the loss exploded or is no longer a number); { $advice }
error-gpu-unavailable = WebGPU is not available: { $detail }
error-gpu = The GPU failed: { $detail }
error-tensor = A computation failed: { $detail }
error-setting-between = { $setting } must be between { $min } and { $max }
error-setting-above-zero = { $setting } must be above 0 and at most { $max }
error-setting-below = { $setting } must be at least 0 and below { $max }
error-setting-linear-or = { $setting } must be between 0 (linear head) and { $max }
error-setting-fewer-than-epochs = { $setting } must be fewer than the epochs, so that the unfrozen blocks train
error-setting-up-to-blocks = { $setting } must be between 0 and { $blocks } (the backbone's blocks)
setting-name-epochs = epochs
setting-name-batch-size = batch size
setting-name-learning-rate = learning rate
setting-name-backbone-learning-rate = backbone learning rate
setting-name-hidden-units = hidden units
setting-name-dropout = dropout
setting-name-weight-decay = weight decay
setting-name-validation-fraction = validation fraction
setting-name-head-only-epochs = head-only epochs
setting-name-augmentation-strength = augmentation strength
setting-name-adaptation-strength = adaptation strength
setting-name-unfrozen-blocks = unfrozen blocks
blocker-two-classes = Add at least two classes to train.
blocker-empty-class = Class "{ $name }" has no samples.
blocker-no-target = Add unlabelled images of the new domain to adapt to it.

## The worker's messages
worker-not-loaded = The model is not loaded yet.
worker-train-first = Train the model first.
worker-sample-missing = Sample { $id } is not stored.
worker-nothing-embedded = No sample has been embedded yet.
worker-no-pretrained = This model has no pretrained classifier.
worker-backbone-changed = The sample was embedded by { $key }, which is no longer the loaded backbone.
worker-cannot-train = Cannot train: { $problem }
worker-in-file = { $file }: { $problem }
training-stopped-preparing = Stopped before training began (while preparing the images).
rank-needs-two-classes = Ranking needs at least two classes with samples.
backbone-not-loaded = The backbone did not load.
backbone-load-failed = { $name } could not be loaded: { $problem }
switch-while-training = Stop training before switching the backbone.
switch-needs-storage = Switching the backbone needs a loaded model and the browser's storage.
storage-unavailable = This browser does not let Graft save ({ $detail }); work will be lost on reload
storage-backbone-fallback = The project's backbone could not be loaded ({ $problem }); using the loaded one
project-elsewhere = '{ $name }' is open in another tab, which saves it: this tab shows it but changes nothing.
project-taken-over = '{ $name }' was taken over by another tab: this tab stopped saving it.
project-take-over = Take it over here
project-held-elsewhere = This project is open in another tab: take it over here first
update-ready = A new version of Graft is ready. Your projects stay as they are.
update-reload = Reload to update
update-after-training = (once training has finished)
storage-full = The browser's storage for this site is full. What was saved is safe, and what you add now is kept in this tab until there is room: export the project to keep a copy, and free space on this device (other files, or delete this project once exported). Saving resumes by itself.
storage-full-wait = Saving is paused because the browser's storage is full, and this project has work not saved yet: export the project or free space on this device before opening another one.
project-option-damaged = Damaged project ({ $samples } images): open to recover
storage-project-recovered = This project's record could not be read: its { $count } saved images were recovered into '{ $class }'. Sort them into classes again.
storage-samples-unreadable = { $count ->
    [one] 1 sample of '{ $class }' could not be read and was left out
   *[other] { $count } samples of '{ $class }' could not be read and were left out
}
storage-samples-unsaved = { $count ->
    [one] 1 sample of '{ $class }' was still being saved when the page closed and is not there
   *[other] { $count } samples of '{ $class }' were still being saved when the page closed and are not there
}
storage-model-unreadable = The saved model could not be read and was left out: train again to get it back
restore-sample-failed = A saved sample could not be restored: { $problem }
restore-model-failed = The saved model could not be restored: { $problem }
fetch-failed = Could not fetch { $url }: { $detail }
pool-note-little-memory = { $gigabytes } GB of memory: embedding on one worker
pool-note-memory = { $workers } workers fit in a quarter of this device's { $gigabytes } GB
pool-note-no-start = The embedding workers could not start: { $detail }
pool-note-hung = it did not answer for { $seconds } s
pool-note-replaced = An embedding worker did not answer for { $seconds } s: a new one took its place, and its images went to the others
pool-note-lost = An embedding worker stopped ({ $why }); { $live } left
advice-smaller-rate = try a smaller learning rate
advice-smaller-backbone-rate = try a smaller backbone learning rate or fewer unfrozen blocks
advice-no-weights = no epoch finished before it, so there are no weights to keep
backend-auto-chose = auto chose the CPU: { $problem }
project-default-first = My project
